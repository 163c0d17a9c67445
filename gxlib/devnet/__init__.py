"""The local Fabric network (SPEC §1 ``local`` profile): binaries, crypto, node configs, channel, processes."""
