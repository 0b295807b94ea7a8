"""The baseline of `validate` in `tests/bench.sh --size 5x`: PyYAML's C-accelerated parse
(libyaml, CSafeLoader) of every YAML file under a directory, every document built as Python
values. Prints how many files and documents it parsed."""

import os
import sys

import yaml

if not yaml.__with_libyaml__:
    sys.exit("parse_pyyaml: this PyYAML has no libyaml (CSafeLoader)")
files = documents = 0
for root, _, names in os.walk(sys.argv[1]):
    for name in sorted(names):
        if name.endswith((".yaml", ".yml")):
            with open(os.path.join(root, name), "rb") as stream:
                documents += sum(1 for d in yaml.load_all(stream, Loader=yaml.CSafeLoader) if d is not None)
            files += 1
print(f"{files} files, {documents} documents")
