#!/usr/bin/env python3
"""Writes the benchmark's deterministic mixed tree: many small text files (pipeline YAML,
scripts, tfvars-like lines) plus a few large binaries, about SIZE_MB in all.

usage: make-tree.py DIR SIZE_MB [--files N]           create the tree (same bytes for the same
                                                     arguments)
       make-tree.py DIR SIZE_MB [--files N] --touch [--seed S]
                                                     change about 1 % of it: rewrite 1 % of the
                                                     small files and 1 % of one large binary
                                                     (another seed S, another change: the same
                                                     seed twice writes the binary's same bytes)

By default 1/8 of the bytes are small files (~4 KiB each: 32 768 files per GiB); --files N
asks for N small files instead, and the large files take what is left of SIZE_MB.
"""
import os
import random
import sys

WORDS = ("stage deploy build test image cache artifact region vault pipeline runner "
         "secret_ref terraform plan apply rollback canary replica backup restore drill "
         "timeout retries needs script env matrix").split()


def text_file(rng, size):
    lines, n = [], 0
    while n < size:
        line = "  " * rng.randrange(4) + " ".join(rng.choice(WORDS) for _ in range(rng.randrange(2, 9)))
        line += ": " + str(rng.randrange(10**6)) + "\n"
        lines.append(line)
        n += len(line)
    return "".join(lines).encode()


def main():
    root, size_mb = sys.argv[1], int(sys.argv[2])
    options = sys.argv[3:]
    touch = "--touch" in options
    total = size_mb << 20
    if "--files" in options:
        n_small = int(options[options.index("--files") + 1])
        small_budget = min(total, n_small * 4096)
    else:
        small_budget = total // 8                  # 1/8 of the bytes in small files
        n_small = max(100, small_budget // 4096)   # ~4 KiB each: 32 768 files per GiB
    rng = random.Random(20261127)
    if touch:
        rng = random.Random(int(options[options.index("--seed") + 1]) if "--seed" in options else 7)
        for i in rng.sample(range(n_small), max(1, n_small // 100)):
            path = os.path.join(root, "repos", f"r{i % 97:02d}", f"f{i:06d}.yml")
            with open(path, "ab") as f:
                f.write(text_file(rng, 256))
        big = os.path.join(root, "artifacts", "image-0.bin")
        with open(big, "r+b") as f:
            f.seek(0, 2)
            length = f.tell()
            change = max(1, length // 100)
            f.seek(rng.randrange(length - change))
            f.write(rng.randbytes(change))
        return
    for i in range(n_small):
        d = os.path.join(root, "repos", f"r{i % 97:02d}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i:06d}.yml"), "wb") as f:
            f.write(text_file(rng, rng.randrange(512, 7680)))
    # The large files: two incompressible images and one compressible log archive.
    big_budget = total - small_budget
    os.makedirs(os.path.join(root, "artifacts"), exist_ok=True)
    for name, share, compressible in (("image-0.bin", 3, False), ("image-1.bin", 3, False),
                                      ("build-logs.txt", 2, True)):
        size = big_budget * share // 8
        with open(os.path.join(root, "artifacts", name), "wb") as f:
            written = 0
            while written < size:
                block = text_file(rng, 1 << 20) if compressible else rng.randbytes(1 << 20)
                block = block[: size - written]
                f.write(block)
                written += len(block)


if __name__ == "__main__":
    main()
