#!/usr/bin/env bash
# Make sure the server binaries the tests and the demo start are installed:
#   PostgreSQL (initdb/pg_ctl, Debian package postgresql), Dovecot IMAP (dovecot-imapd) and the SMTP
#   sink aiosmtpd (python3-aiosmtpd, run by the system python3, not the venv), and headless Chromium
#   (chromium: the browser checks of the HTML reports, driven over the DevTools protocol, no chromedriver)
#   with fonts-liberation (Arial/Helvetica-metric fonts, so text is measured as in a mail client).
# As root, missing packages are installed with apt; otherwise the script stops and names them.
set -euo pipefail
need=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
{ command -v dovecot >/dev/null || [ -x /usr/sbin/dovecot ]; } || need+=(dovecot-imapd)
[ -e /usr/lib/python3/dist-packages/aiosmtpd/__main__.py ] || need+=(python3-aiosmtpd)
{ command -v chromium >/dev/null || [ -x /usr/bin/chromium ]; } || need+=(chromium)
[ -e /usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf ] || need+=(fonts-liberation)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
  echo "system-deps: installing ${need[*]} with apt" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "system-deps: missing Debian package(s): ${need[*]} -- install them: sudo apt-get install ${need[*]}" >&2
  exit 1
fi
