#!/usr/bin/env bash
# deps.sh — installs the Debian packages byhand needs, when they are missing.
# Called by `make deps` (and so by `make run` / `make test`).
set -eu
pkgs=(g++ make libblis-dev libblis4-openmp libstb-dev catch2 zlib1g-dev
      dataset-fashion-mnist gnuplot-nox libopenmpi-dev openmpi-bin)
[ "${BYHAND_DEPS_EXTRA:-}" ] && pkgs+=(${BYHAND_DEPS_EXTRA})

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "deps: not a Debian/Ubuntu system; please install BLIS, stb, Catch2 2.x, zlib,"
  echo "      Fashion-MNIST and gnuplot (see README.md) by hand."
  exit 0
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y ${missing[*]}"
echo "deps: installing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  sh -c "$cmd"
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo sh -c "$cmd"
else
  echo "deps: missing packages; run as root:"
  echo "  sudo sh -c '$cmd'"
  exit 1
fi
