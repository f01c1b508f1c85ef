#!/bin/sh
# Makes /certs/ca.pem and a certificate for the host name "mailpit".
set -eu
[ -f /certs/mailpit.pem ] && exit 0
apk add --no-cache openssl >/dev/null
cd /certs
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
  -subj "/CN=outbound trial CA" -keyout ca-key.pem -out ca.pem
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=mailpit" \
  -keyout mailpit-key.pem -out mailpit.csr
printf 'subjectAltName=DNS:mailpit\nextendedKeyUsage=serverAuth\n' > ext.cnf
openssl x509 -req -in mailpit.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 365 \
  -extfile ext.cnf -out mailpit.pem
chmod 644 /certs/*.pem
