"""Show wsinspect's certificate authority (CA) and how to trust it; make it if needed.

'wsinspect proxy --forward' intercepts HTTPS and wss:// connections: it answers each client
with a certificate for the host the client asked for, signed by wsinspect's own CA, and the
client accepts it once it trusts that CA. This command creates the CA on first use (the
certificate and its private key, in ~/.wsinspect/, or $WSINSPECT_CA_DIR, or --ca-dir) and
prints the certificate's path, its SHA-256 fingerprint and expiry, and how to trust it in
Chrome/Chromium, Firefox, curl, Python, Node.js and the system store. Remove it from those
stores when you are done: anyone with the CA's key can impersonate any site to them.

examples:
  wsinspect ca                                   # make the CA if needed, print how to trust it
  wsinspect ca --path                            # just the certificate's path, for scripts
  certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n wsinspect -i "$(wsinspect ca --path)"
  wsinspect ca --regenerate                      # a new CA; remove the old one from your stores
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ca-dir", metavar="DIR",
                        help="where the CA lives (default: $WSINSPECT_CA_DIR, else ~/.wsinspect/)")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--path", action="store_true",
                      help="print only the path of the CA certificate (PEM), creating it if needed")
    what.add_argument("--regenerate", action="store_true",
                      help="make a new CA, replacing the old one (which then should be removed "
                           "from every trust store)")


def run(args: argparse.Namespace) -> int:
    from wsinspect.ca import CertificateAuthority, default_ca_dir, trust_instructions
    from wsinspect.settings import ConfigError

    directory = default_ca_dir(args.ca_dir)
    old = None
    try:
        if args.regenerate:
            try:
                old = CertificateAuthority.load(directory)
            except ConfigError:
                old = None  # a damaged CA: replacing it is the point
            ca = CertificateAuthority.regenerate(directory)
        else:
            ca = CertificateAuthority.load_or_create(directory)
    except ConfigError as exc:
        print(f"wsinspect ca: error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.path:
            print(ca.cert_path)
            return 0
        if args.regenerate:
            print(f"Made a new CA in {directory}.")
            if old is not None:
                print(f"Remove the old one (SHA-256 {old.fingerprint_sha256}) from every trust "
                      "store you added it to: clients must no longer trust it.")
            else:
                print("Remove the old one from every trust store you added it to, if any.")
            print()
        print(trust_instructions(ca), end="")
    except BrokenPipeError:
        sys.stderr.close()  # `wsinspect ca | head`: not an error
    return 0
