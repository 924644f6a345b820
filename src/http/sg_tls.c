/*
 * sg_tls: listen_tls's SSL_CTX, built from the operator's files and
 * swapped whole on SIGHUP.
 *
 * Why a mutex and not per-thread copies: the lock is held only to take a
 * reference on the current context (SSL_CTX_up_ref), once per accepted
 * connection, next to a handshake that costs a thousand times more; the
 * reload holds it only to exchange the pointer.  SSL_new takes its own
 * reference, so the context a connection began with lives as long as the
 * connection, whatever reloads happen meanwhile.
 */
#include "http/sg_tls.h"

#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sg_config.h"

/*
 * TLS 1.2 suites with forward secrecy and AEAD only (Mozilla's
 * "intermediate" list); TLS 1.3 has its own, all of them fine.
 */
#define TLS12_CIPHERS                                                                              \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                               \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                               \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"                               \
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384"

struct sg_tls {
	pthread_mutex_t mu;
	SSL_CTX *ctx; /* guarded by mu; one reference is ours */
	/* Borrowed from the config, which outlives the server. */
	const char *cert, *key, *client_ca;
};

/* OpenSSL's reason for the last failure, in its own words, and the queue emptied. */
static const char *
ossl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	ERR_clear_error();
	return r ? r : "no details from OpenSSL";
}

static int
readable(const char *what, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (f != NULL) {
		fclose(f);
		return 0;
	}
	snprintf(err, errlen,
	         "%s %s cannot be read: %s; fix the path in sandgate.yaml, or let the user "
	         "sandgate runs as read the file",
	         what, path, strerror(errno));
	return -1;
}

/* Never asks for a passphrase: a server that waits on a terminal prompt never starts. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static int
use_key(SSL_CTX *ctx, const struct sg_tls *tls, char *err, size_t errlen)
{
	FILE *f = fopen(tls->key, "r");
	EVP_PKEY *pkey = f ? PEM_read_PrivateKey(f, NULL, no_passphrase, NULL) : NULL;
	if (f)
		fclose(f);
	if (pkey == NULL) {
		snprintf(
		    err, errlen,
		    "listen_tls.key %s holds no private key sandgate can read (%s); it must be "
		    "the certificate's key in PEM, without a passphrase (openssl pkey -in KEY "
		    "-out KEY.plain removes one)",
		    tls->key, ossl_reason());
		return -1;
	}
	X509 *cert = SSL_CTX_get0_certificate(ctx);
	if (cert == NULL || X509_check_private_key(cert, pkey) != 1) {
		ERR_clear_error();
		EVP_PKEY_free(pkey);
		snprintf(
		    err, errlen,
		    "listen_tls.key %s is not the key of the certificate in listen_tls.cert %s; "
		    "give the key the certificate was issued for (openssl x509 -noout -pubkey "
		    "-in CERT and openssl pkey -pubout -in KEY must print the same)",
		    tls->key, tls->cert);
		return -1;
	}
	int ok = SSL_CTX_use_PrivateKey(ctx, pkey);
	EVP_PKEY_free(pkey);
	if (ok != 1) {
		snprintf(err, errlen, "listen_tls.key %s: cannot be used (%s)", tls->key,
		         ossl_reason());
		return -1;
	}
	return 0;
}

/* Mutual TLS: a client must present a certificate that chains to client_ca. */
static int
use_client_ca(SSL_CTX *ctx, const struct sg_tls *tls, char *err, size_t errlen)
{
	STACK_OF(X509_NAME) *names = NULL;
	if (SSL_CTX_load_verify_locations(ctx, tls->client_ca, NULL) != 1 ||
	    (names = SSL_load_client_CA_file(tls->client_ca)) == NULL) {
		snprintf(
		    err, errlen,
		    "listen_tls.client_ca %s holds no CA certificate sandgate can read (%s); it "
		    "must hold, in PEM, the certificates of the CAs that issue client "
		    "certificates",
		    tls->client_ca, ossl_reason());
		return -1;
	}
	SSL_CTX_set_client_CA_list(ctx, names); /* takes them */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	return 0;
}

static SSL_CTX *
build(const struct sg_tls *tls, char *err, size_t errlen)
{
	static const unsigned char sid_ctx[] = "sandgate";
	if (readable("listen_tls.cert", tls->cert, err, errlen) != 0 ||
	    readable("listen_tls.key", tls->key, err, errlen) != 0 ||
	    (tls->client_ca && readable("listen_tls.client_ca", tls->client_ca, err, errlen) != 0))
		return NULL;
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 ||
	    /* Resumed sessions with client certificates need an id context. */
	    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1) != 1) {
		snprintf(err, errlen, "cannot set up TLS: %s", ossl_reason());
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* Renegotiation is a way to make the server do handshakes on demand; nobody needs it. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE |
	                             SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_dh_auto(ctx, 1);
	SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
	if (SSL_CTX_use_certificate_chain_file(ctx, tls->cert) != 1) {
		snprintf(
		    err, errlen,
		    "listen_tls.cert %s holds no certificate sandgate can read (%s); it must be "
		    "the server's certificate in PEM (-----BEGIN CERTIFICATE-----), followed by "
		    "any intermediate ones",
		    tls->cert, ossl_reason());
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (use_key(ctx, tls, err, errlen) != 0 ||
	    (tls->client_ca && use_client_ca(ctx, tls, err, errlen) != 0)) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

struct sg_tls *
sg_tls_new(const struct sg_config *cfg, char *err, size_t errlen)
{
	struct sg_tls *tls = calloc(1, sizeof(*tls));
	if (tls == NULL) {
		snprintf(err, errlen, "out of memory for TLS");
		return NULL;
	}
	tls->cert = cfg->tls_cert;
	tls->key = cfg->tls_key;
	tls->client_ca = cfg->tls_client_ca;
	if ((tls->ctx = build(tls, err, errlen)) == NULL) {
		free(tls);
		return NULL;
	}
	pthread_mutex_init(&tls->mu, NULL);
	return tls;
}

void
sg_tls_free(struct sg_tls *tls)
{
	if (tls == NULL)
		return;
	SSL_CTX_free(tls->ctx); /* connections still open hold their own references */
	pthread_mutex_destroy(&tls->mu);
	free(tls);
}

int
sg_tls_reload(struct sg_tls *tls, char *err, size_t errlen)
{
	SSL_CTX *next = build(tls, err, errlen);
	if (next == NULL)
		return -1;
	pthread_mutex_lock(&tls->mu);
	SSL_CTX *old = tls->ctx;
	tls->ctx = next;
	pthread_mutex_unlock(&tls->mu);
	SSL_CTX_free(old);
	return 0;
}

/* The current context with a reference for the caller, who frees it. */
static SSL_CTX *
current(struct sg_tls *tls)
{
	pthread_mutex_lock(&tls->mu);
	SSL_CTX *ctx = tls->ctx;
	SSL_CTX_up_ref(ctx);
	pthread_mutex_unlock(&tls->mu);
	return ctx;
}

struct bufferevent *
sg_tls_bev_new(struct sg_tls *tls, struct event_base *base)
{
	SSL_CTX *ctx = current(tls);
	SSL *ssl = SSL_new(ctx);
	SSL_CTX_free(ctx); /* the SSL holds its own */
	if (ssl == NULL)
		return NULL;
	/*
	 * On failure libevent 2.1 may or may not have freed `ssl` already
	 * (it depends on where it failed): out of memory only, so a leak is
	 * the lesser risk than a double free.
	 */
	return bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
	                                      BEV_OPT_CLOSE_ON_FREE);
}

void
sg_tls_serial(struct sg_tls *tls, char *out, size_t outlen)
{
	SSL_CTX *ctx = current(tls);
	X509 *cert = SSL_CTX_get0_certificate(ctx);
	BIGNUM *bn = cert ? ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL) : NULL;
	char *hex = bn ? BN_bn2hex(bn) : NULL;
	snprintf(out, outlen, "%s", hex ? hex : "");
	OPENSSL_free(hex);
	BN_free(bn);
	SSL_CTX_free(ctx);
}
