import sys

from snakemake.utils import min_version, validate

from floecast.config import coerce_overrides

min_version("9.0")


report: "report/workflow.rst"


# The embedded demo is the default; `--configfile config/config.yaml` (or any other)
# replaces it as a whole rather than being merged over it.
if not workflow.overwrite_configfiles:

    configfile: os.path.join(workflow.basedir, "config", "demo.yaml")


# --config values arrive as YAML strings ('3', 'true') inside mappings: the schema's types first
coerce_overrides(config, dict(workflow.config_settings.config))
validate(config, os.path.join(workflow.basedir, "config", "schema.yaml"))


# Rules run `floecast` from PATH: this Python's bin/ goes first, so a provisioned
# environment's Snakemake never runs another environment's floecast.
os.environ["PATH"] = os.pathsep.join(
    [os.path.dirname(sys.executable), os.environ["PATH"]]
)
# With --sdm conda, each env's post-deploy script (envs/*.post-deploy.sh) installs the
# floecast package of this checkout into the env.
os.environ["FLOECAST_WORKFLOW"] = workflow.basedir


envvars:
    "PATH",
    "FLOECAST_WORKFLOW",


include: "rules/common.smk"
include: "rules/ingest.smk"
include: "rules/preprocess.smk"
include: "rules/train.smk"
include: "rules/predict.smk"
include: "rules/evaluate.smk"
include: "rules/publish.smk"


rule all:
    default_target: True
    input:
        final_targets(),


# Tell the operators: notify.command gets the status summary on stdin (never fails the run).
onerror:
    from floecast.status import notify_run

    notify_run(".", config, log)


onsuccess:
    if config["notify"]["on_success"]:
        from floecast.status import notify_run

        notify_run(".", config, log)
