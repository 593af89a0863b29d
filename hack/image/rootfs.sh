#!/usr/bin/env bash
# rootfs.sh BIN OUT: the layers of the nodereboot image and of the pause
# image, as folders under OUT, for image-build (make image). No container
# engine: the files come from this Debian 12 machine, the release the
# Dockerfile builds on, at the paths the Dockerfile puts them.
#
#   OUT/base     what gcr.io/distroless/base-debian12:nonroot gives the
#                binaries: glibc and its loader, /etc/passwd and /etc/group
#                with root and nonroot (65532), /tmp, the CA bundle
#   OUT/nsenter  the Dockerfile's nsenter stage, the same commands:
#                /usr/bin/nsenter and the libraries it links besides glibc
#   OUT/bin      the Dockerfile's build stage: /usr/local/bin/nodereboot-*
#   OUT/pause    /pause, the sandbox image's one file
set -euo pipefail
bin=$1 out=$2
for f in nodereboot-detector nodereboot-controller pause; do
  [ -x "$bin/$f" ] || { echo "rootfs.sh: $bin/$f missing" >&2; exit 1; }
done
command -v nsenter >/dev/null || { echo "rootfs.sh: nsenter (util-linux) missing" >&2; exit 1; }
rm -rf "$out" && mkdir -p "$out"

# base
b=$out/base
mkdir -p "$b/etc/ssl/certs" "$b/tmp" "$b/lib/x86_64-linux-gnu" "$b/lib64" "$b/home/nonroot"
chmod 1777 "$b/tmp"
chmod 0700 "$b/home/nonroot"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$b/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' > "$b/etc/group"
cp -L /etc/ssl/certs/ca-certificates.crt "$b/etc/ssl/certs/"
cp -L "$(ldd /usr/bin/nsenter | awk '$1 ~ /^libc\.so/ { print $3 }')" "$b/lib/x86_64-linux-gnu/"
cp -L /lib64/ld-linux-x86-64.so.2 "$b/lib/x86_64-linux-gnu/"
ln -s /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$b/lib64/ld-linux-x86-64.so.2"

# nsenter: the Dockerfile's RUN, with /out replaced by $n.
n=$out/nsenter
mkdir -p "$n/usr/bin"
cp /usr/bin/nsenter "$n/usr/bin/nsenter"
for lib in $(ldd /usr/bin/nsenter | awk '$3 ~ /^\// { print $3 }'); do
  case "${lib##*/}" in libc.so.*) continue ;; esac
  dir="$(dirname "$(readlink -f "$lib")")"
  mkdir -p "$n$dir"
  cp -L "$lib" "$n$dir/${lib##*/}"
done

mkdir -p "$out/bin/usr/local/bin" "$out/pause"
cp "$bin/nodereboot-detector" "$bin/nodereboot-controller" "$out/bin/usr/local/bin/"
cp "$bin/pause" "$out/pause/pause"
