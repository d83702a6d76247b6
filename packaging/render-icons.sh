#!/bin/sh
# Renders the PNG app icons from the scalable SVG. Needs rsvg-convert
# (Debian package librsvg2-bin). Run from anywhere; the PNGs are committed,
# so building the package does not need this tool.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
icons="$here/linux/icons"
svg="$icons/jp.kizuki.Kizuki.svg"
command -v rsvg-convert >/dev/null 2>&1 || {
    echo "render-icons.sh: rsvg-convert not found (apt-get install librsvg2-bin)" >&2
    exit 1
}
for size in 16 32 48 64 128 256; do
    rsvg-convert --width "$size" --height "$size" --format png \
        --output "$icons/${size}x${size}.png" "$svg"
done
echo "rendered $(ls "$icons"/*.png | wc -l) PNG icons into $icons"
