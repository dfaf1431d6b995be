"""Reference database operations set up from the parameters file: its embedder, build and search settings.

The command line (`cardsorter db ...`), the demo, the benchmarks and the regression replays all build
databases through these functions.
"""

from __future__ import annotations

import pathlib
from typing import Any

from cardsorter.backends.card_index import SearchConfig
from cardsorter.config import find_data_file
from cardsorter.core.errors import ModelError
from cardsorter.db.build import BuildConfig, BuildReport, ProgressFn, build_database


def build_configs(params_file: str | pathlib.Path | None) -> tuple[BuildConfig, SearchConfig]:
    """The matcher section's ``build.`` and ``search.`` settings."""
    from cardsorter.settings import load_settings

    matcher = load_settings(params_file).matcher
    return matcher.build, matcher.search


def agreeing_views(params_file: str | pathlib.Path | None) -> int:
    """smoother.confirm_views: the per-card false-accept rate of the calibration is measured for it."""
    from cardsorter.settings import load_settings

    return load_settings(params_file).smoother.smoothing.confirm_views


def resolve_model(path: str | pathlib.Path) -> pathlib.Path:
    """A model manifest path as given, else from the source tree or the installed package (models/…)."""
    p = pathlib.Path(path)
    if p.exists() or p.is_absolute():
        return p
    return find_data_file(p) or p


def open_embedder(params_file: str | pathlib.Path | None, model: str | pathlib.Path | None = None,
                  backend: str | None = None, threads: int | None = None) -> tuple[Any, str]:
    """The embedder named by the arguments, else by the embedder section, and its model file's sha256."""
    from cardsorter.backends import embedders
    from cardsorter.core.model_manifest import load_manifest
    from cardsorter.settings import load_settings

    emb = load_settings(params_file).embedder
    manifest_path = resolve_model(model or emb.model_manifest)
    manifest = load_manifest(manifest_path)  # ModelError naming the file or key when unusable
    open_fn = getattr(embedders, "open_embedder", None)
    if open_fn is None:
        raise ModelError("cardsorter.backends.embedders.open_embedder is not available in this build")
    embedder = open_fn(backend or emb.backend, str(manifest_path), threads if threads is not None else emb.threads)
    return embedder, manifest.sha256


def build_database_from_settings(images: pathlib.Path, out: pathlib.Path, *, metadata: pathlib.Path | None = None,
                                 metadata_format: str = "auto", params_file: str | pathlib.Path | None = None,
                                 model: str | pathlib.Path | None = None, backend: str | None = None,
                                 threads: int | None = None, progress: ProgressFn | None = None) -> BuildReport:
    """A new reference database at ``out`` from the card images in ``images`` (and their ``metadata``),
    embedded by the parameters file's embedder (``model``, ``backend``, ``threads`` override it)."""
    build_config, search_config = build_configs(params_file)
    embedder, sha = open_embedder(params_file, model, backend, threads)
    try:
        return build_database(images, out, embedder, build_config=build_config, search_config=search_config,
                              metadata_path=metadata, model_sha256=sha, progress=progress,
                              metadata_format=metadata_format, agreeing_views=agreeing_views(params_file))
    finally:
        embedder.close()
