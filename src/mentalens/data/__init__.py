"""Data layer: IMHI, counselling, GoEmotions and raw research sets as typed records, the leakage guard
every training path uses, exports for trainers, and the download of the public files.
"""

from mentalens.data.counselling import HF_COUNSELLING, load_counselchat, load_hf_counselling
from mentalens.data.emotions import EKMAN_GROUPS, GOEMOTIONS_LABELS, load_goemotions
from mentalens.data.export import export_jsonl, to_dataset, to_messages, to_prompt_completion
from mentalens.data.imhi import imhi_files, load_imhi, load_imhi_file, split_query
from mentalens.data.io import atomic_write, read_jsonl, read_table, write_jsonl
from mentalens.data.leakage import LeakageGuard, LeakageReport, normalize_post
from mentalens.data.raw import CAMS_CAUSES, CSSRS_LEVELS, load_cams_raw, load_cssrs, load_irf_raw
from mentalens.data.records import CounselRecord, EmotionRecord, ImhiRecord, RawRecord

__all__ = [
    "CAMS_CAUSES",
    "CSSRS_LEVELS",
    "EKMAN_GROUPS",
    "GOEMOTIONS_LABELS",
    "HF_COUNSELLING",
    "CounselRecord",
    "EmotionRecord",
    "ImhiRecord",
    "LeakageGuard",
    "LeakageReport",
    "RawRecord",
    "atomic_write",
    "export_jsonl",
    "imhi_files",
    "load_cams_raw",
    "load_counselchat",
    "load_cssrs",
    "load_goemotions",
    "load_hf_counselling",
    "load_imhi",
    "load_imhi_file",
    "load_irf_raw",
    "normalize_post",
    "read_jsonl",
    "read_table",
    "split_query",
    "to_dataset",
    "to_messages",
    "to_prompt_completion",
    "write_jsonl",
]
