"""Record the differential test's reference outputs: ``python -m tests.differential.record``.

Run it only from the code whose answers are the reference (before a rewrite);
it overwrites ``tests/differential/reference/``. The fail2ban corpora are
recorded when ``../shared/corpora`` is present (as digests only).
"""

from __future__ import annotations

import gzip
import sys

from tests.differential.outputs import CORPORA, REFERENCE, canonical, cases, outputs, reference_path


def main() -> int:
    REFERENCE.mkdir(parents=True, exist_ok=True)
    for case in cases(corpora=CORPORA.is_dir()):
        data = canonical(outputs(case)).encode()
        path = reference_path(case)
        path.write_bytes(gzip.compress(data, mtime=0))
        print(f"{case.name}: {len(data):,} bytes, {path.stat().st_size:,} compressed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
