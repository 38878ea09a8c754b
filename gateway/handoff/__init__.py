"""Video handoff to staff: the queue and its tickets, appointments, figures and the media that carries the call.

Which module holds what:
- tickets.py: Ticket and TicketState, as stored in redis; errors.py: HandoffError, shown to the person.
- clock.py: DeskClock, the desk's time and day in its timezone, shared by the parts below.
- desk.py: HandoffDesk (queue, tickets, staff<->citizen chat, room tokens), which holds the other two:
  - appointments.py: AppointmentBook, `desk.appointments` (staff hours, offers, booking a slot);
  - figures.py: DeskFigures, `desk.figures` (audit entries for recordings, the supervisor's daily figures).
  - captions.py: CaptionBook, `desk.captions` (live captions' on/off state and lines in the ticket's message
    stream, and the session's masked caption transcript).
- media.py: VideoService (rooms in this process) and NodeVideoService (rooms on media nodes).
- nodes.py: NodeDirectory, the media nodes found through redis.
- node.py: one media node process, `python -m gateway.handoff.node --port N`; not imported here.
- retention.py: RecordingRetention, the hourly deletion (audited) of recordings past
  VIDEO_RECORDING_RETENTION_DAYS; `python -m gateway.handoff.retention --dry-run` by hand; not imported here.
"""
from gateway.handoff.appointments import AppointmentBook
from gateway.handoff.clock import DeskClock
from gateway.handoff.desk import CLASS_WEIGHT, HandoffDesk
from gateway.handoff.errors import HandoffError
from gateway.handoff.figures import DeskFigures
from gateway.handoff.media import NodeVideoService, VideoService, VideoServiceBase, make_rooms
from gateway.handoff.nodes import MediaNode, NodeDirectory, NoMediaNode
from gateway.handoff.tickets import Ticket, TicketState

__all__ = ["CLASS_WEIGHT", "AppointmentBook", "DeskClock", "DeskFigures", "HandoffDesk", "HandoffError", "MediaNode",
           "NoMediaNode", "NodeDirectory", "NodeVideoService", "Ticket", "TicketState", "VideoService",
           "VideoServiceBase", "make_rooms"]
