"""Presets: the column names, renames and types of well-known tools' exports.

A preset is applied before the source's own `rename` and `types`, which win on conflict,
and it tolerates missing optional columns (only the columns present are renamed).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Preset:
    """What a preset contributes to a source: renames, types and text columns to lower-case."""

    description: str
    rename: dict[str, str]
    types: dict[str, str] = field(default_factory=dict)
    lowercase: tuple[str, ...] = ()


PRESETS: dict[str, Preset] = {
    "zendesk_tickets": Preset(
        description="Zendesk Support ticket export (CSV), headers as Zendesk names them",
        rename={
            "ID": "ticket_id",
            "Requester": "requester",
            "Requester ID": "requester_id",
            "Requester email": "requester_email",
            "Requester domain": "requester_domain",
            "Submitter": "submitter",
            "Assignee": "assignee",
            "Group": "group",
            "Subject": "subject",
            "Tags": "tags",
            "Status": "status",
            "Priority": "priority",
            "Via": "via",
            "Ticket type": "ticket_type",
            "Created at": "created_at",
            "Updated at": "updated_at",
            "Assigned at": "assigned_at",
            "Organization": "organization",
            "Due date": "due_date",
            "Solved at": "solved_at",
            "Resolution time": "resolution_hours",
            "Satisfaction Score": "satisfaction",
            "Reopens": "reopens",
            "Replies": "replies",
        },
        types={
            "ticket_id": "string",
            "organization": "string",
            "created_at": "datetime",
            "updated_at": "datetime",
            "assigned_at": "datetime",
            "solved_at": "datetime",
            "due_date": "datetime",
            "resolution_hours": "float",
            "reopens": "int",
            "replies": "int",
        },
        lowercase=("status", "priority", "satisfaction", "ticket_type", "via"),
    ),
}
