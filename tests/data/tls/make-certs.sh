#!/usr/bin/env bash
# Makes the test PKI used by the TLS tests. Run once; the outputs are committed
# (a test CA and keys that protect nothing). Needs the openssl command.
#
#   ca.crt/ca.key                 test root CA (valid 100 years)
#   localhost.crt/.key            leaf for localhost and 127.0.0.1, signed by the CA
#   expired.crt/.key              same names, signed by the CA, valid only in 2020
#   wronghost.crt/.key            leaf for wrong.example only, signed by the CA
#   selfsigned.crt/.key           self-signed leaf for localhost and 127.0.0.1
#   other-ca.crt                  an unrelated CA, for "wrong CA file" tests
set -euo pipefail
cd "$(dirname "$0")"
days=36500
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

key ca.key
openssl req -x509 -new -key ca.key -days $days -subj "/CN=enos-token test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out ca.crt

leaf() { # name subject-alt-names
  key "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=$1" -out "$1.csr"
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$2" > "$1.ext"
}

leaf localhost "DNS:localhost,IP:127.0.0.1"
openssl x509 -req -in localhost.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days $days \
  -extfile localhost.ext -out localhost.crt 2>/dev/null

leaf wronghost "DNS:wrong.example"
openssl x509 -req -in wronghost.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days $days \
  -extfile wronghost.ext -out wronghost.crt 2>/dev/null

# An expired leaf needs explicit dates, which only `openssl ca` sets in OpenSSL 3.0.
leaf expired "DNS:localhost,IP:127.0.0.1"
work=$(mktemp -d)
touch "$work/index.txt"
cat > "$work/ca.cnf" <<CNF
[ca]
default_ca = test
[test]
database = $work/index.txt
new_certs_dir = $work
serial = $work/serial
default_md = sha256
policy = any
copy_extensions = none
[any]
commonName = supplied
CNF
echo 1000 > "$work/serial"
openssl ca -batch -config "$work/ca.cnf" -cert ca.crt -keyfile ca.key -in expired.csr \
  -startdate 20200101000000Z -enddate 20201231000000Z -extfile expired.ext \
  -out expired.crt -notext 2>/dev/null
rm -rf "$work"

key selfsigned.key
openssl req -x509 -new -key selfsigned.key -days $days -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -addext "basicConstraints=critical,CA:FALSE" \
  -out selfsigned.crt

key other-ca.key
openssl req -x509 -new -key other-ca.key -days $days -subj "/CN=unrelated CA" \
  -addext "basicConstraints=critical,CA:TRUE" -out other-ca.crt
rm -f other-ca.key ./*.csr ./*.ext ./*.srl
