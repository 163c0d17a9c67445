#!/usr/bin/env python3
"""Type stubs (.pyi) for the installed ``fabric_protos`` package, written from its own message descriptors.

hyperledger-fabric-protos is marked py.typed but ships only generated ``*_pb2`` modules whose classes exist at run
time, so mypy would see none of its messages. The stubs live in ``typings/`` (mypy_path) and are committed;
tests/unit/test_fabric_proto_stubs.py fails when they no longer match the installed package.

    python scripts/fabric_proto_stubs.py            # rewrite typings/fabric_protos
    python scripts/fabric_proto_stubs.py --check    # exit 1 if typings/fabric_protos is out of date
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import keyword
import pkgutil
import sys
from collections.abc import Iterator
from pathlib import Path

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor, FileDescriptor

ROOT = Path(__file__).resolve().parents[1]
TYPINGS = ROOT / "typings"
PACKAGE = "fabric_protos"

_SCALARS = {
    FieldDescriptor.TYPE_DOUBLE: "float", FieldDescriptor.TYPE_FLOAT: "float",
    FieldDescriptor.TYPE_BOOL: "bool", FieldDescriptor.TYPE_STRING: "str", FieldDescriptor.TYPE_BYTES: "bytes",
    FieldDescriptor.TYPE_ENUM: "int",
}
_INDENT = "    "


def module_of(proto_file: str) -> str:
    """``peer/proposal.proto`` → ``fabric_protos.peer.proposal_pb2``; ``google/...`` stays where it is."""
    dotted = proto_file.removesuffix(".proto").replace("/", ".") + "_pb2"
    return dotted if proto_file.startswith("google/") else f"{PACKAGE}.{dotted}"


def _alias(module: str) -> str:
    return "_" + module.replace(".", "_")


def _python_name(descriptor: Descriptor | EnumDescriptor) -> str:
    """The class path inside its module: ``ChaincodeMessage.Type``."""
    package: str = descriptor.file.package
    full: str = descriptor.full_name
    return full[len(package) + 1:] if package else full


class _Module:
    def __init__(self, file: FileDescriptor) -> None:
        self.file = file
        self.imports: set[str] = set()

    def ref(self, descriptor: Descriptor | EnumDescriptor) -> str:
        """How this module names a message or enum class (quoted forward references are not needed in a stub)."""
        if descriptor.file.name == self.file.name:
            return _python_name(descriptor)
        module = module_of(descriptor.file.name)
        self.imports.add(module)
        return f"{_alias(module)}.{_python_name(descriptor)}"

    def value_type(self, field: FieldDescriptor) -> str:
        if field.type in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP):
            return self.ref(field.message_type)
        return _SCALARS.get(field.type, "int")

    def field_types(self, field: FieldDescriptor) -> tuple[str, str]:
        """(attribute type, constructor parameter type) of one field."""
        if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
            key = self.value_type(field.message_type.fields_by_name["key"])
            value_field = field.message_type.fields_by_name["value"]
            value = self.value_type(value_field)
            if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                return f"containers.MessageMap[{key}, {value}]", f"Mapping[{key}, {value}] | None"
            return f"containers.ScalarMap[{key}, {value}]", f"Mapping[{key}, {value}] | None"
        value = self.value_type(field)
        is_message = field.type in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP)
        if field.label == FieldDescriptor.LABEL_REPEATED:
            if is_message:
                return (f"containers.RepeatedCompositeFieldContainer[{value}]",
                        f"Iterable[{value} | Mapping[str, Any]] | None")
            return f"containers.RepeatedScalarFieldContainer[{value}]", f"Iterable[{value}] | None"
        if is_message:
            return value, f"{value} | Mapping[str, Any] | None"
        if field.type == FieldDescriptor.TYPE_ENUM:
            return "int", "int | str | None"
        return value, f"{value} | None"

    def enum(self, enum: EnumDescriptor, depth: int) -> Iterator[str]:
        pad = _INDENT * depth
        yield f"{pad}class {enum.name}(int, metaclass=enum_type_wrapper.EnumTypeWrapper):"
        for value in enum.values:
            yield f"{pad}{_INDENT}{value.name}: ClassVar[int]"
        if not enum.values:
            yield f"{pad}{_INDENT}..."
        # Like the generated module, the values are also attributes of the enclosing scope.
        for value in enum.values:
            yield f"{pad}{value.name}: int"

    def message(self, message: Descriptor, depth: int) -> Iterator[str]:
        pad = _INDENT * depth
        inner = pad + _INDENT
        yield f"{pad}class {message.name}(message.Message):"
        yield f"{inner}DESCRIPTOR: descriptor.Descriptor"
        for enum in message.enum_types:
            yield from self.enum(enum, depth + 1)
        for nested in message.nested_types:
            if not nested.GetOptions().map_entry:
                yield from self.message(nested, depth + 1)
        fields = [f for f in message.fields if not keyword.iskeyword(f.name)]
        parameters = []
        for field in fields:
            attribute, parameter = self.field_types(field)
            yield f"{inner}{field.name}: {attribute}"
            parameters.append(f"{field.name}: {parameter} = ...")
        if parameters:
            yield f"{inner}def __init__(self, *, {', '.join(parameters)}) -> None: ..."

    def render(self, source: str) -> str:
        body: list[str] = []
        for enum in self.file.enum_types_by_name.values():
            body += self.enum(enum, 0)
        for message in self.file.message_types_by_name.values():
            body += self.message(message, 0)
        header = [
            f"# Generated by scripts/fabric_proto_stubs.py from {source}. Do not edit.",
            "from collections.abc import Iterable, Mapping",
            "from typing import Any, ClassVar",
            "",
            "from google.protobuf import descriptor, message",
            "from google.protobuf.internal import containers, enum_type_wrapper",
        ]
        header += [f"import {module} as {_alias(module)}" for module in sorted(self.imports)]
        return "\n".join([*header, "", "DESCRIPTOR: descriptor.FileDescriptor", "", *body, ""])


def stubs() -> dict[str, str]:
    """Relative path under typings/ → stub text, for every module of the installed fabric_protos package."""
    package = importlib.import_module(PACKAGE)
    source = "the installed hyperledger-fabric-protos"
    out = {f"{PACKAGE}/__init__.pyi": f"# Generated by scripts/fabric_proto_stubs.py from {source}.\n"}
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{PACKAGE}."):
        path = info.name.replace(".", "/")
        if info.ispkg:
            out[f"{path}/__init__.pyi"] = ""
        elif info.name.endswith("_pb2"):
            module = importlib.import_module(info.name)
            out[f"{path}.pyi"] = _Module(module.DESCRIPTOR).render(source)
        else:  # *_pb2_grpc: plain gRPC plumbing, left untyped
            out[f"{path}.pyi"] = ("from typing import Any\n\n"
                                  "def __getattr__(name: str) -> Any: ...  # untyped gRPC stubs and servicers\n")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with typings/ instead of writing it")
    args = parser.parse_args()
    wanted = stubs()
    target = TYPINGS / PACKAGE
    present = {str(p.relative_to(TYPINGS)): p.read_text() for p in target.rglob("*.pyi")} if target.exists() else {}
    if args.check:
        if present == wanted:
            return 0
        for name in sorted(set(wanted) | set(present)):
            if present.get(name) != wanted.get(name):
                sys.stdout.writelines(difflib.unified_diff(
                    present.get(name, "").splitlines(keepends=True), wanted.get(name, "").splitlines(keepends=True),
                    f"typings/{name}", f"generated/{name}"))
        print("typings/fabric_protos is out of date: run python scripts/fabric_proto_stubs.py", file=sys.stderr)
        return 1
    for name in set(present) - set(wanted):
        (TYPINGS / name).unlink()
    for name, text in wanted.items():
        path = TYPINGS / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
