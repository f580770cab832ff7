#!/usr/bin/env bash
# Reports (detector/reports) embed the DejaVu fonts (fonts-dejavu-core) so the PDF looks the same
# everywhere; the tests render the PDF with poppler (pdftoppm, pdftotext: poppler-utils). Install
# them when missing and we may; otherwise reports fall back to standard fonts and those tests skip.
set -u
missing=()
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
command -v pdftoppm >/dev/null 2>&1 || missing+=(poppler-utils)
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure_pdf_tools: installing ${missing[*]}"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null) \
    || echo "ensure_pdf_tools: could not install ${missing[*]}" >&2
else
  echo "ensure_pdf_tools: ${missing[*]} missing and not root: reports use standard fonts, PDF tests skip" >&2
fi
exit 0
