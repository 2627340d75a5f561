# Shared by tools/pos-certs and tools/pad-certs (sourced, not run): a development CA, a server
# certificate and client certificates whose subject CN is a name eftd checks (till id, pad
# serial). Uses the openssl command line (Debian package openssl).

# eftd_make_certs DIR SERVER_NAME CA_CN CLIENT_NAME...
# Keeps an existing DIR/ca.pem, so running it again adds or replaces certificates under the same CA.
eftd_make_certs() {
  local dir="$1" server="$2" ca_cn="$3" days=825
  shift 3
  mkdir -p "$dir"
  (
    cd "$dir"
    umask 077
    if [ ! -f ca.pem ]; then
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
        -days "$days" -subj "/CN=$ca_cn" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    fi
    issue() {  # issue NAME CN EXTFILE
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.csr" \
        -subj "/CN=$2" 2>/dev/null
      openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$1.pem" -days "$days" \
        -extfile "$3" 2>/dev/null
      rm -f "$1.csr"
    }
    printf 'subjectAltName=DNS:%s,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' "$server" >server.ext
    issue server "$server" server.ext
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    for name in "$@"; do issue "$name" "$name" client.ext; done
    rm -f server.ext client.ext
    chmod 644 ./*.pem
  )
}
