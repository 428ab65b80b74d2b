from snakemake.utils import min_version, validate

min_version("9.0")


report: "report/workflow.rst"


# The embedded demo is the default; `--configfile config/config.yaml` (or any other)
# replaces it as a whole rather than being merged over it.
if not workflow.overwrite_configfiles:

    configfile: os.path.join(workflow.basedir, "config", "demo.yaml")


validate(config, os.path.join(workflow.basedir, "config", "schema.yaml"))


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
