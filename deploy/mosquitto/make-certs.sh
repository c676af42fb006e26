#!/usr/bin/env bash
# Make the broker's identity files for deploy/mosquitto/mosquitto.conf with openssl and
# mosquitto_passwd: a test CA, the server certificate, a client certificate per device and a
# password file. For test rigs and a first deployment; a production CA key lives offline.
#
#   deploy/mosquitto/make-certs.sh [options] OUTDIR [DEVICE ...]
#
#   --host NAME        a name clients reach the broker by (repeatable; default localhost and
#                      127.0.0.1); it goes into the server certificate's subjectAltName
#   --worker NAME      a cloud worker account in the password file (default qloop-worker)
#   --password-device  devices also get a password (username = device id), for devices that
#                      cannot keep a private key
#   --simulator        a password for qloop-sim, who may publish for any device (test rigs only)
#   --days N           validity of new certificates (default 825)
#
# Writes into OUTDIR (run again to add devices: the CA and the server key are kept):
#   ca.crt ca.key                 the CA (ca.key: keep it offline)
#   server.crt server.key         the broker's certificate
#   devices/ID.crt devices/ID.key a device's client certificate (CN = the device id)
#   passwd                        the password file (mosquitto_passwd, hashed)
#   passwords/USER                each new account's password in clear text (hand out, delete)
# Private keys and passwords are readable by their owner only (give the broker's user, often
# mosquitto, server.key and passwd: chown or chgrp them when installing).
set -euo pipefail

hosts=() workers=() password_devices=0 simulator=0 days=825
usage() { sed -n '5,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --host) hosts+=("$2"); shift 2 ;;
    --worker) workers+=("$2"); shift 2 ;;
    --password-device) password_devices=1; shift ;;
    --simulator) simulator=1; shift ;;
    --days) days=$2; shift 2 ;;
    -h|--help) usage ;;
    -*) echo "make-certs: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || usage
out=$1; shift
[ ${#hosts[@]} -gt 0 ] || hosts=(localhost 127.0.0.1)
[ ${#workers[@]} -gt 0 ] || workers=(qloop-worker)
for tool in openssl mosquitto_passwd; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "make-certs: $tool is missing (apt-get install openssl mosquitto)" >&2; exit 1; }
done
for device in "$@"; do
  # the device id of CONTRACTS.md 1, and never an account name: a certificate's CN is its
  # username, so a device certificate named qloop-worker would read the whole fleet
  if ! [[ $device =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ ]]; then
    echo "make-certs: $device is not a device id ([A-Za-z0-9][A-Za-z0-9_.-]{0,63})" >&2; exit 2
  fi
  case " ${workers[*]} qloop-sim qloop-worker " in
    *" $device "*) echo "make-certs: $device is an account name, not a device id" >&2; exit 2 ;;
  esac
done

umask 077
mkdir -p "$out/devices" "$out/passwords"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# sign NAME KEY CERT EXTENSIONS: a certificate for KEY with CN=NAME, signed by the CA
sign() {
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
    "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid" "$4" > "$tmp/ext"
  openssl req -new -key "$2" -subj "/O=qloop/CN=$1" -out "$tmp/csr"
  openssl x509 -req -in "$tmp/csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial \
    -days "$days" -sha256 -extfile "$tmp/ext" -out "$3" 2>/dev/null
}

if [ ! -f "$out/ca.key" ]; then
  key "$out/ca.key"
  openssl req -x509 -new -key "$out/ca.key" -subj "/O=qloop/CN=qloop test CA" -days 3650 \
    -sha256 -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$out/ca.crt"
  echo "make-certs: new CA $out/ca.crt"
fi

san=()
for h in "${hosts[@]}"; do
  if [[ $h =~ ^[0-9.]+$ || $h == *:* ]]; then san+=("IP:$h"); else san+=("DNS:$h"); fi
done
[ -f "$out/server.key" ] || key "$out/server.key"
sign "${hosts[0]}" "$out/server.key" "$out/server.crt" \
  "extendedKeyUsage=serverAuth
subjectAltName=$(IFS=,; echo "${san[*]}")"
echo "make-certs: server certificate for ${hosts[*]}"

for device in "$@"; do
  [ -f "$out/devices/$device.key" ] || key "$out/devices/$device.key"
  sign "$device" "$out/devices/$device.key" "$out/devices/$device.crt" \
    "extendedKeyUsage=clientAuth"
done
[ $# -eq 0 ] || echo "make-certs: client certificates for $*"

# New accounts get a random password; an account already in the file keeps its own.
accounts=("${workers[@]}")
[ "$simulator" = 0 ] || accounts+=(qloop-sim)
[ "$password_devices" = 0 ] || accounts+=("$@")
touch "$out/passwd"
: > "$tmp/new"
for user in "${accounts[@]}"; do
  grep -q "^$user:" "$out/passwd" && continue
  pw=$(openssl rand -hex 24)
  printf '%s\n' "$pw" > "$out/passwords/$user"
  printf '%s:%s\n' "$user" "$pw" >> "$tmp/new"
done
if [ -s "$tmp/new" ]; then
  mosquitto_passwd -U "$tmp/new"  # hashes in place: no password on a command line
  cat "$tmp/new" >> "$out/passwd"
  echo "make-certs: passwords for $(cut -d: -f1 "$tmp/new" | tr '\n' ' ')in $out/passwords/"
fi
chmod 0644 "$out"/*.crt "$out"/devices/*.crt 2>/dev/null || true  # certificates are public
