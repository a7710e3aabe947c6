#!/usr/bin/env bash
# Installs, from Debian's packages, whatever the build and the tests need
# and this machine lacks. Safe to run again: present packages are skipped.
set -euo pipefail
packages=(
	make gcc binutils            # toolchain
	gnu-efi                      # UEFI headers, crt0, libgnuefi
	libcmocka-dev                # unit tests
	clang                        # libFuzzer for the fuzz targets
	mtools dosfstools            # FAT boot disk without root mounts
	ovmf                         # UEFI firmware for Bochs and QEMU
	bochs bochsbios vgabios bochs-term  # VT-x + EPT emulation
	qemu-system-x86              # the no-VT-x path
	util-linux procps gawk       # script, setsid, pgrep, awk
	python3                      # the console server, initramfs packer, e2e clients
	libglib2.0-0 libnuma1 liburing2 libudev1  # what the Linux test guest's qemu-ga links
)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
echo "install-deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
