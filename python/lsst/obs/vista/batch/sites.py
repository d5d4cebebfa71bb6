"""A parsl site for ctrl_bps_parsl on an HTCondor pool.

ctrl_bps_parsl ships sites for the local machine, Slurm, Torque and Work
Queue but none for HTCondor; `HTCondor` runs the bps jobs on workers that
parsl's `~parsl.providers.CondorProvider` starts as HTCondor jobs.
``bps/site-htcondor.yaml`` names it and documents its settings.
"""

from __future__ import annotations

__all__ = ("HTCondor",)

from typing import TYPE_CHECKING

from lsst.ctrl.bps.parsl.configuration import get_bps_config_value
from lsst.ctrl.bps.parsl.site import SiteConfig
from parsl.executors import HighThroughputExecutor
from parsl.executors.base import ParslExecutor
from parsl.providers import CondorProvider

if TYPE_CHECKING:
    from lsst.ctrl.bps.parsl.job import ParslJob

EXECUTOR_LABEL = "htcondor"


class HTCondor(SiteConfig):
    """Run bps jobs on parsl workers started as HTCondor jobs.

    Each HTCondor job (a parsl "block") holds one worker pool of
    ``cores_per_slot`` workers, each running one bps job at a time; parsl
    keeps between ``min_blocks`` and ``max_blocks`` of them while there is
    work.  Site settings (``site.<computeSite>.*``):

    - ``cores_per_slot`` (`int`): cores requested per HTCondor job, and
      workers in it (required);
    - ``mem_per_slot`` (`float`): memory per HTCondor job, GB (default:
      the pool's);
    - ``max_blocks`` (`int`): most HTCondor jobs at once (default 1);
    - ``min_blocks`` (`int`): HTCondor jobs kept while idle (default 0);
    - ``walltime`` (`str`): time limit of each HTCondor job (default
      ``"04:00:00"``);
    - ``worker_init`` (`str`): shell commands run before the worker starts,
      e.g. activating this package's environment (default none);
    - ``requirements`` (`str`): HTCondor ``requirements`` expression
      (default none);
    - ``scheduler_options`` (`str`): extra lines of the HTCondor submit
      description (default none).
    """

    def __init__(self, *args, **kwargs) -> None:
        # Pass each job's bps priority through to the executor, as the stock sites do.
        kwargs["resource_list"] = ["priority"]
        super().__init__(*args, **kwargs)

    def get_executors(self) -> list[ParslExecutor]:
        """Return the one executor: a worker pool per HTCondor job."""
        cores = get_bps_config_value(self.site, "cores_per_slot", int, required=True)
        provider = CondorProvider(
            cores_per_slot=cores,
            mem_per_slot=get_bps_config_value(self.site, "mem_per_slot", float, None),
            init_blocks=0,
            min_blocks=get_bps_config_value(self.site, "min_blocks", int, 0),
            max_blocks=get_bps_config_value(self.site, "max_blocks", int, 1),
            walltime=get_bps_config_value(self.site, "walltime", str, "04:00:00"),
            worker_init=get_bps_config_value(self.site, "worker_init", str, ""),
            requirements=get_bps_config_value(self.site, "requirements", str, ""),
            scheduler_options=get_bps_config_value(self.site, "scheduler_options", str, ""),
        )
        return [
            HighThroughputExecutor(
                EXECUTOR_LABEL,
                provider=provider,
                max_workers_per_node=cores,
                address=self.get_address(),
            )
        ]

    def select_executor(self, job: ParslJob) -> str:
        """Every job runs on the one executor."""
        return EXECUTOR_LABEL
