# What e2e/run.sh and wasi-e2e/run.sh share, sourced by both with one argument, the name their
# verdict starts with (E2E_NAME). It sets E2E (the folder of the script that sources it, with its
# package-lock.json), the crate's folder (CRATE) and the scratch folder (WORK: $E2E_WORK, or
# work/ beside the script), checks the tools both need, and defines the steps they share:
# failing with a message, and installing what they need, idempotently, from package registries
# only.

E2E_NAME="$1"
E2E="$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)"
CRATE="$(dirname "$E2E")"
WORK="${E2E_WORK:-$E2E/work}"

step() { printf '\n== %s\n' "$*"; }
die() { printf '\n%s FAILED: %s\n' "$E2E_NAME" "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed ($2)"; }

# The tools both need: rustup/cargo, Node.js 20 or newer with npm, openssl.
need_common_tools() {
  need cargo "install Rust with rustup: https://rustup.rs"
  need rustup "install Rust with rustup: https://rustup.rs"
  need node "install Node.js 20 or newer"
  need npm "install npm (comes with Node.js)"
  need openssl "install the openssl command-line tool (apt-get install openssl)"
  node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' \
    || die "Node.js 20 or newer is needed (found $(node --version))"
}
need_common_tools

# The Rust target $1, added when it is missing.
rust_target() {
  step "Rust target $1"
  if rustup target list --installed | grep -qx "$1"; then
    echo "already installed"
  else
    rustup target add "$1"
  fi
}

# The npm packages pinned in $E2E/package-lock.json (npm ci), unless the package $1 is installed
# at its pinned version. smtp-server (nodemailer's) too: a tree installed before it was added
# lacks it.
npm_packages() {
  local want have
  want="$(node -p 'require(process.argv[1]).packages["node_modules/" + process.argv[2]].version' "$E2E/package-lock.json" "$1")"
  have="$(node -p 'try { require(process.argv[1]).version } catch { "" }' "$E2E/node_modules/$1/package.json" 2>/dev/null || true)"
  [ -f "$E2E/node_modules/smtp-server/package.json" ] || have=""
  if [ "$have" = "$want" ]; then
    echo "${1##*/} $want already installed"
  else
    (cd "$E2E" && npm ci --no-audit --no-fund)
  fi
}

# pproxy, a real SOCKS5 and HTTP CONNECT proxy (pip install pproxy, as scripts/test.sh does).
pproxy_installed() {
  if python3 -c 'import pproxy' 2>/dev/null; then
    echo "already installed"
  else
    python3 -m pip install --quiet --disable-pip-version-check pproxy \
      || die "could not install pproxy (python3 -m pip install pproxy)"
  fi
}

# In $WORK: a test CA for each name after the first argument (NAME.key, NAME.pem, its subject
# "<first argument> NAME"), and server.key, server.pem for localhost signed by the one named ca.
test_certificates() {
  local subject="$1"
  shift
  (
    cd "$WORK"
    for ca in "$@"; do
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj "/CN=$subject $ca" -keyout "$ca.key" -out "$ca.pem" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        2>/dev/null
    done
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
    printf '%s\n' "subjectAltName=DNS:localhost" "basicConstraints=critical,CA:FALSE" \
      "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
      -extfile server.ext -out server.pem 2>/dev/null
  ) || die "could not create the test certificates with openssl"
  echo "done"
}
