# Sourced by /init and by every interactive shell (ENV): helpers for the
# commands the end-to-end test types on the console.

# Uptime in centiseconds, for timing inside the guest (/proc/uptime has two decimals).
centis() { read -r up _ </proc/uptime; echo $((${up%.*} * 100 + 1${up#*.} - 100)); }
