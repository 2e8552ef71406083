/* The CRIU checkpoint backend (ckpt.h), private: its post-copy save runs
 * CRIU's lazy dump through the command line (ckpt_criu_lazy.c). */
#ifndef FERRY_CKPT_CRIU_H
#define FERRY_CKPT_CRIU_H

#include "tenant/ckpt.h"

int ckpt_criu_save_lazy(const struct ckpt_env *env, const struct ckpt_target *t,
			const struct ckpt_save_opts *o, struct ckpt_save_result *res, ferr_t *err);

#endif
