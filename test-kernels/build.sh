#!/usr/bin/env bash
# Builds the four test kernels exactly as documented at the top of Cargo.toml,
# patches EI_OSABI to 0xff, copies them to target/test-kernels/<profile>/ and checks
# the result with readelf. `cargo xtask build` does the same in Rust; this script is
# the reference for it and a way to build the kernels without xtask.
#
# Usage: test-kernels/build.sh [debug|release]   (default: debug)
set -euo pipefail

profile="${1:-debug}"
case "$profile" in
    debug) release_flag=() ;;
    release) release_flag=(--release) ;;
    *) echo "usage: $0 [debug|release]" >&2; exit 2 ;;
esac

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target=x86_64-unknown-linux-gnu
out="target/test-kernels/$profile"

# An outer cargo may export encoded flags, which would take precedence over RUSTFLAGS.
unset CARGO_ENCODED_RUSTFLAGS
export CARGO_PROFILE_DEV_PANIC=abort CARGO_PROFILE_RELEASE_PANIC=abort

common="-C target-feature=+crt-static -C link-arg=-nostartfiles -C link-arg=-nostdlib -C link-arg=-Wl,--build-id=none"

RUSTFLAGS="$common -C relocation-model=pie" \
    cargo build -p test-kernels --features bare-metal --bin hello-dyn --bin legacy-dyn --bin legacy-v2 \
    --target "$target" --target-dir target/bare-metal/kernels-pie "${release_flag[@]}"

RUSTFLAGS="$common -C relocation-model=static -C link-arg=-static -C link-arg=-no-pie -C link-arg=-Wl,--image-base=0x800000" \
    cargo build -p test-kernels --features bare-metal --bin hello-exec \
    --target "$target" --target-dir target/bare-metal/kernels-exec "${release_flag[@]}"

mkdir -p "$out"
cp "target/bare-metal/kernels-pie/$target/$profile/hello-dyn" "$out/"
cp "target/bare-metal/kernels-pie/$target/$profile/legacy-dyn" "$out/"
cp "target/bare-metal/kernels-pie/$target/$profile/legacy-v2" "$out/"
cp "target/bare-metal/kernels-exec/$target/$profile/hello-exec" "$out/"

# No linker flag sets EI_OSABI: write 0xff (standalone) into byte 7, as Hermit does.
for k in hello-dyn legacy-dyn legacy-v2 hello-exec; do
    printf '\377' | dd of="$out/$k" bs=1 seek=7 count=1 conv=notrunc status=none
done

# Check what the loader will rely on.
fail() { echo "build.sh: $*" >&2; exit 1; }
check() {
    local k="$1" type="$2" tag="$3" tls="$4" version="${5:-04}"
    local f="$out/$k" h
    h="$(readelf -hlnrW "$f")"
    [ "$(od -An -tx1 -j7 -N1 "$f" | tr -d ' ')" = ff ] || fail "$k: EI_OSABI is not 0xff"
    grep -q "Type: *$type" <<<"$h" || fail "$k: not $type"
    [ "$(grep -c '^  NOTE ' <<<"$h")" = 1 ] || fail "$k: not exactly one PT_NOTE"
    grep -q "HERMIT .*0x00005a00.*description data: $version" <<<"$h" || fail "$k: no HERMIT entry version $version note"
    if [ "$tag" = tag ]; then
        grep -q 'NT_GNU_ABI_TAG.*ABI: 0.13.0' <<<"$h" || fail "$k: no ABI tag 0.13.0"
    else
        ! grep -q NT_GNU_ABI_TAG <<<"$h" || fail "$k: unexpected ABI tag"
    fi
    if [ "$tls" = tls ]; then
        grep -Eq '^  TLS .* 0x000010 0x000050 R +0x20$' <<<"$h" || fail "$k: PT_TLS is not filesz 0x10, memsz 0x50, align 0x20"
    else
        ! grep -q '^  TLS ' <<<"$h" || fail "$k: unexpected PT_TLS"
    fi
    if [ "$type" = DYN ]; then
        local other
        other="$(readelf -rW "$f" | grep -E '^[0-9a-f]{16} ' | grep -vc R_X86_64_RELATIVE || true)"
        [ "$other" = 0 ] || fail "$k: relocations other than R_X86_64_RELATIVE"
        ! grep -q '(NEEDED)' <<<"$(readelf -dW "$f")" || fail "$k: DT_NEEDED"
        local n
        n="$(readelf -rW "$f" | grep -c R_X86_64_RELATIVE)"
        echo "$k: ET_DYN, $n R_X86_64_RELATIVE relocations"
    else
        grep -q '^  LOAD *0x000000 0x0000000000800000' <<<"$h" || fail "$k: first PT_LOAD not at 0x800000"
        grep -q 'There are no relocations' <<<"$h" || fail "$k: has relocations"
        echo "$k: ET_EXEC at 0x800000, no relocations"
    fi
}
check hello-dyn DYN tag tls
check legacy-dyn DYN notag notls
check legacy-v2 DYN notag tls 02
check hello-exec EXEC notag tls
echo "kernels in $out"
