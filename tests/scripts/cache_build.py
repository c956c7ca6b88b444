"""Build a teacher cache in one process of a gloo group (or alone): used by tests/test_cache.py.

    python cache_build.py TEACHER_DIR DATASET_DIR CACHE_DIR OUT_JSON [--init-gloo]
"""

import json
import os
import sys

import datasets
import numpy as np
import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer

from hf_distill.cache import cache_teacher_outputs

teacher_dir, data_dir, cache_dir, out = sys.argv[1:5]
if "--init-gloo" in sys.argv:
    torch.distributed.init_process_group("gloo")
torch.manual_seed(0)
torch.set_num_threads(1)
teacher = AutoModelForTokenClassification.from_pretrained(teacher_dir).eval()
tokenizer = AutoTokenizer.from_pretrained(teacher_dir)
rows = datasets.load_from_disk(data_dir)
cached = cache_teacher_outputs(teacher, rows, cache_dir=cache_dir, tokenizer=tokenizer, shard_size=7, batch_size=4)
rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
with open(f"{out}.{rank}", "w") as f:
    json.dump({"rows": len(cached),
               "logits": [np.asarray(r, dtype=float).ravel().tolist() for r in cached["teacher_logits"][:5]],
               "hashes": [int(x) for x in cached["teacher_input_hash"]], "pid": os.getpid()}, f)
if torch.distributed.is_initialized():
    torch.distributed.destroy_process_group()
