#!/usr/bin/env bash
# Builds the Linux test guest from Debian's own packages, as the issue asks:
# the unmodified kernel of linux-image-amd64 and an initramfs made of
# busybox-static, the kernel's virtio modules, Debian's qemu-guest-agent,
# the project's vmm-agent and tests/linux/init.
#
#   tools/mk-linux-guest.sh OUTDIR
#
# Writes OUTDIR/vmlinuz, OUTDIR/initrd.img (gzip'd newc cpio) and
# OUTDIR/disk.img (a 4-MiB virtio-blk disk with a known first sector).
# The .deb files are cached in ${VMM_CACHE:-~/.cache/vmm} so repeated runs
# (and CI on the same machine) download nothing.
set -euo pipefail
out=${1:?usage: tools/mk-linux-guest.sh OUTDIR}
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${VMM_CACHE:-$HOME/.cache/vmm}
mkdir -p "$out" "$cache"

# The kernel package linux-image-amd64 points at today (e.g. 6.1.0-56-amd64).
kpkg=$(apt-cache depends linux-image-amd64 | sed -n 's/.*Depends: \(linux-image-[0-9].*\)/\1/p' | head -1)
[ -n "$kpkg" ] || { echo "mk-linux-guest: cannot resolve linux-image-amd64 (apt-get update?)" >&2; exit 1; }
kver=${kpkg#linux-image-}

fetch() { # package -> path of its .deb in the cache
	local deb
	deb=$(ls "$cache"/"$1"_*.deb 2>/dev/null | head -1 || true)
	if [ -z "$deb" ]; then
		(cd "$cache" && apt-get download "$1" >/dev/null 2>&1) ||
			{ echo "mk-linux-guest: apt-get download $1 failed" >&2; exit 1; }
		deb=$(ls "$cache"/"$1"_*.deb | head -1)
	fi
	echo "$deb"
}

# The project's own guest agent, a static program (mgmt/additions/).
agent=$root/build/additions/vmm-agent
make --no-print-directory -C "$root" build/additions/vmm-agent >/dev/null

stamp="$out/.stamp-$kver"
if [ -f "$stamp" ] && [ -z "$(find "$root/tests/linux" "$0" "$agent" -newer "$stamp")" ]; then
	exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dpkg-deb -x "$(fetch "$kpkg")" "$work/k"
dpkg-deb -x "$(fetch busybox-static)" "$work/bb"
dpkg-deb -x "$(fetch qemu-guest-agent)" "$work/qga"
cp "$work/k/boot/vmlinuz-$kver" "$out/vmlinuz"

# The initramfs: busybox, /init, and the virtio modules in load order
# (Debian builds virtio as modules; modules.dep is made at install time,
# so the order is written here).
ir=$work/initrd
mkdir -p "$ir"/{bin,sbin,dev,etc,proc,sys,tmp,mnt,run,lib/modules}
cp "$work/bb/bin/busybox" "$ir/bin/busybox"
for applet in sh mount umount insmod cat echo dd md5sum sha256sum poweroff reboot \
	ip ifconfig udhcpc setsid cttyhack sed ping nc wc head sleep ls sync uname hexdump cmp seq \
	date hwclock cp chmod mv mkdir dirname watchdog kill pidof; do
	ln -s busybox "$ir/bin/$applet"
done
# qemu-ga's guest-set-time writes the RTC with /sbin/hwclock -w.
ln -s ../bin/busybox "$ir/sbin/hwclock"
mods=$work/k/lib/modules/$kver/kernel
for m in drivers/virtio/virtio.ko drivers/virtio/virtio_ring.ko \
	drivers/virtio/virtio_pci_modern_dev.ko drivers/virtio/virtio_pci_legacy_dev.ko \
	drivers/virtio/virtio_pci.ko drivers/virtio/virtio_balloon.ko drivers/block/virtio_blk.ko \
	net/core/failover.ko drivers/net/net_failover.ko drivers/net/virtio_net.ko \
	drivers/char/virtio_console.ko fs/fat/fat.ko fs/fat/vfat.ko fs/nls/nls_cp437.ko \
	fs/nls/nls_utf8.ko fs/nls/nls_ascii.ko drivers/watchdog/watchdog.ko drivers/watchdog/i6300esb.ko; do
	cp "$mods/$m" "$ir/lib/modules/"
done
# The guest agents: Debian's qemu-ga with the shared libraries it needs
# (the build host's, Debian's too: ldd finds them), and vmm-agent.
cp "$work/qga/usr/sbin/qemu-ga" "$ir/bin/qemu-ga"
ldd "$work/qga/usr/sbin/qemu-ga" | awk '/=> \// { print $3 } /^\t\// { print $1 }' |
	while read -r lib; do
		mkdir -p "$ir$(dirname "$lib")"
		cp -L "$lib" "$ir$lib"
	done
if ldd "$work/qga/usr/sbin/qemu-ga" | grep -q 'not found'; then
	echo "mk-linux-guest: qemu-ga needs libraries this host lacks:" \
		"$(ldd "$work/qga/usr/sbin/qemu-ga" | grep 'not found' | tr -s '\t\n' ' ')" >&2
	exit 1
fi
install -m 0755 "$agent" "$ir/bin/vmm-agent"
install -m 0755 "$root/tests/linux/shutdown" "$ir/sbin/shutdown"
printf 'NAME="vmm test guest"\nID=vmmtest\nVERSION_ID=1\nPRETTY_NAME="vmm test guest 1 (busybox)"\n' \
	>"$ir/etc/os-release"
install -m 0755 "$root/tests/linux/init" "$ir/init"
install -m 0755 "$root/tests/linux/udhcpc.script" "$ir/bin/udhcpc.script"
install -m 0644 "$root/tests/linux/vmmtest.sh" "$ir/etc/vmmtest.sh"
python3 "$root/tools/mkcpio.py" "$ir" | gzip -9 >"$out/initrd.img"

# The disk: sector 0 carries a marker the guest checks, the rest is zero.
dd if=/dev/zero of="$out/disk.img" bs=1M count=4 status=none
printf 'VMM-DISK-OK\n' | dd of="$out/disk.img" conv=notrunc status=none
touch "$stamp"
echo "mk-linux-guest: $kver, initrd $(stat -c %s "$out/initrd.img") bytes"
