/* libFuzzer target: a peer's manifest, as the receiver checks it before it
 * trusts anything in it (bounds before decoding, then names, sizes, hashes,
 * set id), and the encoding of what was accepted. */
#include <stdint.h>
#include <stdlib.h>

#include "proto/manifest.h"
#include "transport/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	manifest_t *m = NULL, *checked = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	ferr_t e = {0};

	if (wire_manifest_bounded(data, size, &e) < 0 || manifest_decode(data, size, &m, &e) < 0)
		return 0;
	if (wire_check_manifest(data, size, m->set_id, &checked, &e) == 0) {
		manifest_total_size(checked);
		if (checked->n_files)
			manifest_find(checked, checked->files[0]->name);
		if (manifest_encode(checked, &buf, &len, &e) == 0)
			free(buf);
	}
	manifest_free(checked);
	manifest_free(m);
	return 0;
}
