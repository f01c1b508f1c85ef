#!/bin/sh
# Makes /certs/ca.pem, a certificate for the host name "mailpit", and one
# for Outbound's SMTP submission listeners ("localhost", "outbound").
set -eu
[ -f /certs/mailpit.pem ] && [ -f /certs/outbound.pem ] && exit 0
apk add --no-cache openssl >/dev/null
cd /certs
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
  -subj "/CN=outbound trial CA" -keyout ca-key.pem -out ca.pem
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=mailpit" \
  -keyout mailpit-key.pem -out mailpit.csr
printf 'subjectAltName=DNS:mailpit\nextendedKeyUsage=serverAuth\n' > ext.cnf
openssl x509 -req -in mailpit.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 365 \
  -extfile ext.cnf -out mailpit.pem
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
  -keyout outbound-key.pem -out outbound.csr
printf 'subjectAltName=DNS:localhost,DNS:outbound,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > ext-outbound.cnf
openssl x509 -req -in outbound.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 365 \
  -extfile ext-outbound.cnf -out outbound.pem
# A trial: the keys are readable by the containers' nonroot users.
chmod 644 /certs/*.pem
