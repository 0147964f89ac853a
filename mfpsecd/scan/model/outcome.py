"""What happens to a job whose data carries a virus (SPEC V-2), after the seed's table:

| option       | the virus   | TX job  | RX job                                  |
|--------------|-------------|---------|-----------------------------------------|
| Continue     | removed     | deleted | executed                                |
| Delete       | removed     | deleted | deleted, except FAX and e-mail: executed |
| Delete All   | removed     | deleted | deleted                                 |

"Removed": the infected data is never stored. "Deleted": the job's data already stored
goes too and the job is not executed; "executed": the job goes on without the infected
part. RX jobs are what the device receives (print, FAX and e-mail received); TX jobs are
what it sends (scan to send, FAX sent). Pure: no I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Source(enum.Enum):
    """Where a job's data comes from (Put's `source`)."""

    PRINT = "print"  # RX: a print job (and what it saves in a user box)
    FAX_RECEIVED = "fax-received"  # RX
    EMAIL_RECEIVED = "email-received"  # RX: e-mail print
    SCAN_TO_SEND = "scan-to-send"  # TX: scan to e-mail, SMB, FTP, ...
    FAX_TO_SEND = "fax-to-send"  # TX

    @property
    def received(self) -> bool:
        return self not in (Source.SCAN_TO_SEND, Source.FAX_TO_SEND)


class RxOption(enum.Enum):
    """The administrator's option for RX jobs with a virus."""

    CONTINUE = "continue"
    DELETE = "delete"
    DELETE_ALL = "delete-all"


class JobAction(enum.Enum):
    EXECUTE = "execute"  # the job goes on without the infected data
    DELETE = "delete"  # the job's stored data is deleted and it is not executed


def job_action(source: Source, option: RxOption) -> JobAction:
    if not source.received or option is RxOption.DELETE_ALL:
        return JobAction.DELETE
    if option is RxOption.CONTINUE:
        return JobAction.EXECUTE
    # Delete: FAX and e-mail received are executed all the same.
    if source in (Source.FAX_RECEIVED, Source.EMAIL_RECEIVED):
        return JobAction.EXECUTE
    return JobAction.DELETE


class FailurePolicy(enum.Enum):
    """What a job gets when it cannot be scanned (the scanner down, too slow, its
    database too old, the data larger than it takes)."""

    REFUSE = "refuse"  # fail closed: the data is not stored
    STORE_UNSCANNED = "store-unscanned"  # fail open: stored, marked and audited as not scanned


@dataclass(frozen=True)
class Verdict:
    """A scan's result: clean, a signature found, or why there is no answer."""

    signature: str = ""  # the virus found ("" when none)
    failure: str = ""  # why the data could not be scanned ("" when it was)
    scanned: int = 0  # bytes the scanner took

    @property
    def clean(self) -> bool:
        return not self.signature and not self.failure
