"""Container images built on this machine, with no registry and no Docker engine.

Each image of the catalog is described by a recipe (its inputs and how to build it); ``store`` caches one OCI
archive per input digest; ``oci`` and ``layer`` write the OCI image itself, deterministically.
"""
