"""The layout of a job in a tracking store: experiment name and tag keys (store-independent).

One experiment, ``hyperseq``; one *parent* run per job (tag ``hyperseq.kind=job``) and one
*child* run per trial (``hyperseq.kind=trial``, linked by ``mlflow.parentRunId``). Jobs are
found by their ``hyperseq.job`` tag, trials by the parent run id.
"""
from __future__ import annotations

EXPERIMENT = "hyperseq"
# MLflow's experiment kind: its UI opens an experiment of this kind on the runs table (one
# without a kind opens on the GenAI overview, which shows no training runs).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
PARENT = "mlflow.parentRunId"
RUN_NAME = "mlflow.runName"
TAG_KIND = "hyperseq.kind"               # "job" | "trial"
TAG_JOB = "hyperseq.job"                 # job name, on parent and children
TAG_SEARCHER = "hyperseq.searcher"
TAG_SPACE = "hyperseq.space"
TAG_TASK = "hyperseq.task"
TAG_METRIC = "hyperseq.metric"           # task metric name (children and parent)
TAG_MODE = "hyperseq.mode"
TAG_REWARD_RULE = "hyperseq.reward_rule"
TAG_STORAGE = "hyperseq.storage"         # Ray Tune experiment path, for a later resume
TAG_TRIAL = "hyperseq.trial_id"
TAG_CONFIG = "hyperseq.config"           # the config as JSON (typed; params are strings)
TAG_STOPPED = "hyperseq.stopped_early"   # "true" on trials a scheduler stopped
TAG_ERROR = "hyperseq.error"
TAG_OPTIONS = "hyperseq.options"         # the job's options as JSON (typed), for `resume`
TAG_INTERRUPTED = "hyperseq.interrupted" # "true" on trial runs a driver crash or Ctrl-C cut short
TAG_CLOSED_BY = "hyperseq.closed_by"     # "hyperseq cancel" / "hyperseq resume": runs they ended
TAG_PHASE = "hyperseq.phase"             # "search" | "final" (trial runs)
TAG_DEFAULT = "hyperseq.default"         # "true" on the final-phase run of the task's default config
MAX_TAG = 5000
LIVE = ("RUNNING", "SCHEDULED")          # statuses of a run still open
