//! The busybox image: Debian's static busybox with a link per applet, `Cmd ["sh"]`.
//!
//! One difference from the host's busybox: `nslookup` resolves names the way busybox 1.28's did
//! (the version the walkthroughs name), through the resolv.conf search list with `ndots` as
//! libc does. Busybox 1.29 and later query a dotted name like `web-0.nginx` only as written, so
//! inside a cluster it never resolves. [`NSLOOKUP`], first on `PATH`, tries the candidates in
//! libc's order with the real applet and prints the first answer in 1.28's layout. Debian's
//! busybox shell runs its own applets ahead of `PATH`, so an interactive `sh` (the image's
//! `Cmd`, as in `kubectl run -i --tty ... busybox:1.28`) reads [`SHRC`] through `ENV`, which
//! points the name `nslookup` at the wrapper; `sh -c nslookup ...` still gets the applet.

use crate::docker_save::RunConfig;
use crate::error::Result;
use crate::images::base::{PATH_ENV, add_busybox, root_layout};
use crate::tree::Tree;

pub(crate) fn plan() -> Result<(Tree, RunConfig)> {
    let mut tree = root_layout(&[])?;
    add_busybox(&mut tree)?;
    tree.file("usr/local/bin/nslookup", 0o755, NSLOOKUP)?;
    tree.file("etc/shrc", 0o644, SHRC)?;
    let run = RunConfig {
        cmd: vec!["sh".to_owned()],
        env: vec![PATH_ENV.to_owned(), "ENV=/etc/shrc".to_owned()],
        ..RunConfig::default()
    };
    Ok((tree, run))
}

/// Read by interactive shells (`ENV`): `nslookup` is the wrapper, not the applet.
pub const SHRC: &str = "nslookup() { /usr/local/bin/nslookup \"$@\"; }\n";

/// `nslookup NAME [SERVER]` with the search list applied, as busybox 1.28 (through libc) did.
pub const NSLOOKUP: &str = r#"#!/bin/sh
# nslookup as busybox 1.28 behaved: NAME goes through the resolv.conf search list (ndots) as libc
# resolves it; the first candidate with an address is printed in 1.28's layout.
name="$1"
server="$2"
conf=/etc/resolv.conf
[ -n "$name" ] || { echo "Usage: nslookup HOST [DNS_SERVER]" >&2; exit 1; }
[ -n "$server" ] || server=$(awk '$1 == "nameserver" { print $2; exit }' "$conf" 2>/dev/null)
[ -n "$server" ] || server=127.0.0.1
search=$(awk '$1 == "search" { $1 = ""; print }' "$conf" 2>/dev/null)
ndots=$(sed -n 's/.*ndots:\([0-9]*\).*/\1/p' "$conf" 2>/dev/null | head -n 1)
[ -n "$ndots" ] || ndots=1
dots=$(printf '%s' "$name" | tr -cd . | wc -c)
case "$name" in
  *.) candidates="$name" ;;
  *)
    suffixed=""
    for domain in $search; do suffixed="$suffixed $name.$domain"; done
    if [ "$dots" -ge "$ndots" ]; then candidates="$name $suffixed"; else candidates="$suffixed $name"; fi
    ;;
esac
printf 'Server:    %s\nAddress 1: %s\n\n' "$server" "$server"
for candidate in $candidates; do
  addresses=$(busybox nslookup "$candidate" "$server" 2>/dev/null | awk '/^Name:/ { named = 1 } named && /^Address/ { print $NF }')
  if [ -n "$addresses" ]; then
    printf 'Name:      %s\n' "$name"
    i=1
    for a in $addresses; do printf 'Address %d: %s\n' "$i" "$a"; i=$((i + 1)); done
    exit 0
  fi
done
echo "nslookup: can't resolve '$name'" >&2
exit 1
"#;
