"""Convert an original PerFeX ``.pt`` state dict into a PerFeX checkpoint (safetensors + JSON config).

usage: python -m perfex.checkpoint.convert_legacy cnn_180.pt weights/converted/
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from models.errors import ModelError

from .io import legacy_meta, load_legacy_state_dict, save_checkpoint
from ..core.errors import PerfexError
from ..core.tables import refuse_overwrite


def convert(source: Path, out_dir: Path, force: bool = False) -> Path:
    """Write ``<out_dir>/<stem>.safetensors`` and ``.json`` holding the original weights unchanged."""
    from models import build_legacy_model

    model = build_legacy_model(load_legacy_state_dict(source))
    target = Path(out_dir) / f"{source.stem}.safetensors"
    refuse_overwrite(target, force)
    return save_checkpoint(model, target, legacy_meta(model, source))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m perfex.checkpoint.convert_legacy",
        description="Convert an original PerFeX checkpoint (torch.save(model.state_dict()), e.g. cnn_180.pt or "
        "attn_180.pt) into a safetensors checkpoint with a JSON config (legacy: true). The file is read with "
        "torch.load(weights_only=True); its architecture is recognised from its keys and shapes.",
    )
    parser.add_argument("source", type=Path, help="the original .pt file")
    parser.add_argument("out_dir", type=Path, help="folder for <name>.safetensors and <name>.json")
    parser.add_argument("--force", action="store_true", help="overwrite an existing converted checkpoint")
    args = parser.parse_args(argv)
    try:
        if not args.source.exists():
            raise PerfexError(f"{args.source} does not exist")
        target = convert(args.source, args.out_dir, args.force)
    except (PerfexError, ModelError) as err:
        print(f"convert_legacy: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {target} and {target.with_suffix('.json').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
