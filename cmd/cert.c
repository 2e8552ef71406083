/* ferry cert: create a CA and issue host certificates (transport/cert.h). */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/cert.h"
#include "cmd/cmd.h"
#include "lib/json.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: ferry cert init DIR [--ca-name NAME] [--json]\n"
		   "       ferry cert issue DIR NAME [--days N] [--json]\n"
		   "       ferry cert renew DIR NAME [--days N] [--json]\n"
		   "       ferry cert revoke DIR NAME\n\n"
		   "init   create a certificate authority: DIR/ca.pem, DIR/ca.key (0600)\n"
		   "issue  create DIR/NAME.pem and DIR/NAME.key (0600) signed by DIR's CA,\n"
		   "       for host NAME (DNS name; also an IP SAN when NAME is an address).\n"
		   "       The same certificate serves as TLS server and client identity;\n"
		   "       valid --days days (default 90).\n"
		   "renew  replace DIR/NAME.pem and DIR/NAME.key with a new key and certificate\n"
		   "       (a running agent reloads it when the file changes).\n"
		   "revoke add DIR/NAME.pem to DIR/crl.pem, signed by the CA; copy crl.pem to\n"
		   "       every host's directory: agents reload it when it changes and\n"
		   "       refuse the certificate from then on.\n\n"
		   "Copy ca.pem and each host's NAME.pem/NAME.key to that host; keep ca.key\n"
		   "where you issue certificates. Hosts then use --tls DIR --name NAME.\n");
}

int cmd_cert(int argc, char **argv, const struct global_opts *g)
{
	static const struct option opts[] = {
	    {"ca-name", required_argument, NULL, 'c'},
	    {"days", required_argument, NULL, 'd'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *ca_name = "ferry CA";
	int days = CERT_DAYS_DEFAULT, json = 0, c;
	ferr_t err = {0};

	(void)g;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			ca_name = optarg;
			break;
		case 'd':
			days = atoi(optarg);
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			usage(stdout);
			return FX_OK;
		default:
			usage(stderr);
			return FX_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 2 && !strcmp(argv[0], "init")) {
		if (cert_init(argv[1], ca_name, &err) < 0)
			return cmd_report("cert init", &err);
	} else if (argc == 3 && (!strcmp(argv[0], "issue") || !strcmp(argv[0], "renew"))) {
		bool renew = !strcmp(argv[0], "renew");
		if (days <= 0 || days > 36500) {
			fprintf(stderr, "ferry cert: --days must be 1..36500\n");
			return FX_USAGE;
		}
		if ((renew ? cert_renew : cert_issue)(argv[1], argv[2], days, &err) < 0)
			return cmd_report(renew ? "cert renew" : "cert issue", &err);
	} else if (argc == 3 && !strcmp(argv[0], "revoke")) {
		if (cert_revoke(argv[1], argv[2], &err) < 0)
			return cmd_report("cert revoke", &err);
		printf("revoked %s: %s/crl.pem\n", argv[2], argv[1]);
		return FX_OK;
	} else {
		usage(stderr);
		return FX_USAGE;
	}
	if (json) {
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
