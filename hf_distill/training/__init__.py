"""Training a student: the arguments, the Trainer subclass, its collator, counts, schedules, projections,
checkpoints, the checks run before any compute, and the teacher signal (online or cached)."""
