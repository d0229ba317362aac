#!/usr/bin/env bash
# Run a command the way a container runs it, for the tests: in the mount namespace it is
# started in (use under `unshare -m -p -f`), chrooted into ROOTFS, which has the host's /usr
# and /etc bound in, a private /opt (tmpfs) holding its own copy of OpenSSL, loaded through
# LD_LIBRARY_PATH as images that bundle their own libssl do, and CERT copied to /opt/cert.pem.
# Nothing of /opt exists outside: only /proc/PID/map_files or /proc/PID/root reach it.
#   chroot_run.sh ROOTFS CERT COMMAND [ARG...]
set -euo pipefail
R=$1 CERT=$2
REPO=$(cd "$(dirname "$0")/../.." && pwd)  # the test programs, at the same path inside
shift 2
mkdir -p "$R"/usr "$R"/etc "$R"/proc "$R"/dev "$R"/opt "$R$REPO"
mount -t tmpfs none "$R/opt"
mkdir -p "$R/opt/ssl/lib"
cp /usr/lib/x86_64-linux-gnu/libssl.so.3 /usr/lib/x86_64-linux-gnu/libcrypto.so.3 "$R/opt/ssl/lib/"
cp "$CERT" "$R/opt/cert.pem"
mount --bind /usr "$R/usr"
mount --bind /etc "$R/etc"
mount --bind /dev "$R/dev"
mount --bind "$REPO" "$R$REPO"
ln -sfn usr/lib "$R/lib"
ln -sfn usr/lib64 "$R/lib64"
ln -sfn usr/bin "$R/bin"
mount -t proc proc "$R/proc"
exec chroot "$R" /usr/bin/env LD_LIBRARY_PATH=/opt/ssl/lib "$@"
