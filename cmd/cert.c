/* ferry cert: create a CA and issue host certificates (transport/cert.h). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/cert.h"
#include "cmd/cmd.h"
#include "cmd/opts.h"
#include "lib/json.h"

struct cert_args {
	const char *ca_name;
	int days;
	bool json;
};

static const struct opt cert_opts[] = {
    {.name = "ca-name",
     .type = OPT_STR,
     .off = offsetof(struct cert_args, ca_name),
     .arg = "NAME",
     .flags = OPT_SHOW_DEFAULT,
     .help = "init: the CA's common name"},
    {.name = "days",
     .type = OPT_INT,
     .off = offsetof(struct cert_args, days),
     .arg = "N",
     .min = 1,
     .max = 36500,
     .flags = OPT_SHOW_RANGE | OPT_SHOW_DEFAULT,
     .help = "issue, renew: the certificate is valid N days"},
    OPTS_JSON(struct cert_args, json),
    {0},
};

static const struct cmd_spec cert_spec = {
    .name = "cert",
    .args = "init DIR | issue DIR NAME | renew DIR NAME | revoke DIR NAME",
    .min_args = 2,
    .max_args = 3,
    .about = "init   create a certificate authority: DIR/ca.pem, DIR/ca.key (0600)\n"
	     "issue  create DIR/NAME.pem and DIR/NAME.key (0600) signed by DIR's CA,\n"
	     "       for host NAME (DNS name; also an IP SAN when NAME is an address).\n"
	     "       The same certificate serves as TLS server and client identity.\n"
	     "renew  replace DIR/NAME.pem and DIR/NAME.key with a new key and certificate\n"
	     "       (a running agent reloads its own when the file changes).\n"
	     "revoke add DIR/NAME.pem to DIR/crl.pem, signed by the CA; copy crl.pem to\n"
	     "       every host's directory: agents reload it when it changes and\n"
	     "       refuse the certificate from then on.\n",
    .notes = "Copy ca.pem and each host's NAME.pem/NAME.key to that host; keep ca.key\n"
	     "where you issue certificates. Hosts then use --tls DIR --name NAME.\n",
    .opts = cert_opts,
};

int cmd_cert(int argc, char **argv, const struct global_opts *g)
{
	struct cert_args a = {.ca_name = "ferry CA", .days = CERT_DAYS_DEFAULT};
	ferr_t err = {0};
	int pos, rc;

	(void)g;
	if ((rc = opts_parse(&cert_spec, &a, argc, argv, &pos)) != OPTS_RUN)
		return rc;
	argc -= pos;
	argv += pos;
	if (argc == 2 && !strcmp(argv[0], "init")) {
		if (cert_init(argv[1], a.ca_name, &err) < 0)
			return cmd_report("cert init", &err);
	} else if (argc == 3 && (!strcmp(argv[0], "issue") || !strcmp(argv[0], "renew"))) {
		bool renew = !strcmp(argv[0], "renew");
		if ((renew ? cert_renew : cert_issue)(argv[1], argv[2], a.days, &err) < 0)
			return cmd_report(renew ? "cert renew" : "cert issue", &err);
	} else if (argc == 3 && !strcmp(argv[0], "revoke")) {
		if (cert_revoke(argv[1], argv[2], &err) < 0)
			return cmd_report("cert revoke", &err);
		printf("revoked %s: %s/crl.pem\n", argv[2], argv[1]);
		return FX_OK;
	} else {
		return opts_usage_error(
		    &cert_spec, "want init DIR, issue DIR NAME, renew DIR NAME or revoke DIR NAME");
	}
	if (a.json) {
		struct jw w;
		char crt[4096], key[4096];
		const char *n = argc == 3 ? argv[2] : "ca";

		snprintf(crt, sizeof(crt), "%s/%s.pem", argv[1], n);
		snprintf(key, sizeof(key), "%s/%s.key", argv[1], n);
		jw_init(&w, stdout);
		jw_obj_begin(&w, NULL);
		jw_str(&w, "cert", crt);
		jw_str(&w, "key", key);
		jw_obj_end(&w);
		jw_finish(&w);
	} else {
		printf("%s: %s/%s.pem\n",
		       argc == 2		   ? "created CA"
		       : !strcmp(argv[0], "renew") ? "renewed"
						   : "issued",
		       argv[1], argc == 3 ? argv[2] : "ca");
	}
	return FX_OK;
}
