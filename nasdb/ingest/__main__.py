"""``python -m nasdb.ingest``: the background projector process (`nasdb.ingest._service.main`).

Its own entry module, because running ``-m nasdb.ingest._service`` executes a module that the
package has already imported, which makes Python warn about it (``RuntimeWarning: ... found in
sys.modules``) in every spawned projector's log.
"""

import sys

from nasdb.ingest._service import main

sys.exit(main())
