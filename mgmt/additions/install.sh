#!/bin/sh
# Installs vmm-agent, the guest additions of the vmm hypervisor, from the
# additions drive InstallAdditions put in (docs/guest-agent.md):
#
#	mount -o ro /dev/disk/by-id/virtio-vmm-additions /mnt   (or the vdX whose
#	                                  /sys/block/vdX/serial is vmm-additions)
#	sh /mnt/install.sh
#
# It copies the agent to /usr/local/sbin, makes it start at boot (a
# systemd unit, else an init.d script, else it says what to add), and
# starts it now. Run it again to update the agent.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dest=/usr/local/sbin
mkdir -p "$dest"
cp "$here/vmm-agent" "$dest/vmm-agent.new"
chmod 0755 "$dest/vmm-agent.new"
mv "$dest/vmm-agent.new" "$dest/vmm-agent"

if [ -d /run/systemd/system ]; then
	cat >/etc/systemd/system/vmm-agent.service <<UNIT
[Unit]
Description=vmm guest agent (QEMU guest agent protocol)
After=dev-virtio\\x2dports-org.qemu.guest_agent.0.device

[Service]
ExecStart=$dest/vmm-agent
Restart=always

[Install]
WantedBy=multi-user.target
UNIT
	systemctl daemon-reload
	systemctl enable --now vmm-agent.service
	echo "vmm-agent: installed in $dest, started, and enabled at boot (systemd)"
	exit 0
fi
if [ -d /etc/init.d ]; then
	cat >/etc/init.d/vmm-agent <<SCRIPT
#!/bin/sh
### BEGIN INIT INFO
# Provides:          vmm-agent
# Required-Start:    \$local_fs
# Required-Stop:     \$local_fs
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: vmm guest agent
### END INIT INFO
case "\$1" in
start) $dest/vmm-agent </dev/null >/dev/null 2>&1 & ;;
stop) kill \$(pidof vmm-agent) 2>/dev/null ;;
esac
SCRIPT
	chmod 0755 /etc/init.d/vmm-agent
	command -v update-rc.d >/dev/null && update-rc.d vmm-agent defaults >/dev/null
	echo "vmm-agent: installed in $dest, an init script in /etc/init.d"
else
	echo "vmm-agent: installed in $dest; start it at boot from your init ($dest/vmm-agent &)"
fi
"$dest/vmm-agent" </dev/null >/dev/null 2>&1 &
echo "vmm-agent: started (pid $!)"
