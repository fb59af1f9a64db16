#!/usr/bin/env bash
# get_mnist.sh — fetch the four MNIST files and check them against their md5.
#
# MNIST (Y. LeCun, C. Cortes, C. Burges) is distributed as four gzipped IDX
# files. byhand reads them as they are (no need to gunzip), from data/mnist/
# by default; see data/README.md for every place the library looks.
#
#   bash data/get_mnist.sh                  download into data/mnist/
#   bash data/get_mnist.sh --dest DIR       download into DIR
#   bash data/get_mnist.sh --from DIR       copy from a local folder instead
#                                           (e.g. a copy made on another machine)
#
# Files already in place with the right md5 are left alone, so running it
# again is cheap. A file is only put in place once its md5 is right: an
# interrupted download never leaves a half file behind under the real name.
# Exit status: 0 when all four files are in place and verified, 1 otherwise.
set -u

FILES=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz
       t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)
declare -A MD5=(
  [train-images-idx3-ubyte.gz]=f68b3c2dcbeaaa9fbdd348bbdeb94873
  [train-labels-idx1-ubyte.gz]=d53e105ee54ea40749a09fcbcd1e9432
  [t10k-images-idx3-ubyte.gz]=9fb629c4189551a2d022fa330f9573f3
  [t10k-labels-idx1-ubyte.gz]=ec29112dd5afa0611ce80d1b7f02629c
)
# Tried in order. The original site (yann.lecun.com) is last: it has been
# slow and has sometimes refused plain downloads.
MIRRORS=(
  https://ossci-datasets.s3.amazonaws.com/mnist/
  https://storage.googleapis.com/cvdf-datasets/mnist/
  http://yann.lecun.com/exdb/mnist/
)

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dest="$script_dir/mnist"   # the repo's data/mnist, wherever we are run from
from=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dest) [ $# -ge 2 ] || { echo "get_mnist.sh: --dest needs a folder" >&2; exit 2; }
            dest=$2; shift 2 ;;
    --from) [ $# -ge 2 ] || { echo "get_mnist.sh: --from needs a folder" >&2; exit 2; }
            from=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "get_mnist.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

md5_of() {
  if command -v md5sum >/dev/null; then md5sum "$1" | cut -d' ' -f1
  else md5 -q "$1"   # macOS
  fi
}

# download URL OUT: whichever of curl and wget is installed.
download() {
  if command -v curl >/dev/null; then
    curl --fail --location --silent --show-error --connect-timeout 20 --retry 1 -o "$2" "$1"
  elif command -v wget >/dev/null; then
    wget --quiet --timeout=20 --tries=2 -O "$2" "$1"
  else
    echo "  neither curl nor wget is installed (sudo apt-get install curl)" >&2
    return 1
  fi
}

# fetch NAME OUT: put a copy of NAME at OUT, from --from DIR or from a mirror.
fetch() {
  local name=$1 out=$2
  if [ -n "$from" ]; then
    if [ ! -f "$from/$name" ]; then
      echo "  missing: $from/$name does not exist" >&2
      return 1
    fi
    cp "$from/$name" "$out" && chmod u+w "$out"   # the source may be read-only
    return
  fi
  local mirror
  for mirror in "${MIRRORS[@]}"; do
    echo "  downloading $mirror$name"
    if download "$mirror$name" "$out"; then return 0; fi
    echo "  failed from $mirror" >&2
  done
  echo "  could not download $name from any mirror (no network?)." >&2
  echo "  On a machine with a network, run this script there and use --from DIR here." >&2
  return 1
}

if [ -n "$from" ] && [ ! -d "$from" ]; then
  echo "get_mnist.sh: --from $from: no such folder" >&2
  exit 1
fi
mkdir -p "$dest" || { echo "get_mnist.sh: cannot create $dest" >&2; exit 1; }
echo "MNIST -> $dest"

failed=()
for name in "${FILES[@]}"; do
  target="$dest/$name"
  want=${MD5[$name]}
  if [ -f "$target" ]; then
    if [ "$(md5_of "$target")" = "$want" ]; then
      echo "ok  $name (already there, md5 verified)"
      continue
    fi
    echo "    $name is there but its md5 is wrong: fetching it again"
  fi
  part="$target.part"
  rm -f "$part"
  if ! fetch "$name" "$part"; then
    rm -f "$part"
    if [ -n "$from" ]; then failed+=("$name (missing in $from)")
    else failed+=("$name (download failed)"); fi
    continue
  fi
  got=$(md5_of "$part")
  if [ "$got" != "$want" ]; then
    echo "  $name: md5 $got, expected $want (damaged or a different file)" >&2
    rm -f "$part"
    failed+=("$name (wrong md5)")
    continue
  fi
  mv -f "$part" "$target"
  echo "ok  $name (md5 verified)"
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "get_mnist.sh: FAILED for ${#failed[@]} of ${#FILES[@]} files:" >&2
  for f in "${failed[@]}"; do echo "  $f" >&2; done
  exit 1
fi
echo "All ${#FILES[@]} MNIST files are in $dest."
