"""One CloudFormation stack: change sets, live stack events, the failure's cause."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError

from deploy import template as tpl
from deploy.settings import DeployError, say

Out = Callable[[str], None]
# The deploy expands the SAM transform itself (deploy.template.expand): no macros.
CAPABILITIES = ["CAPABILITY_IAM"]
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
# Stacks in these states can take a new change set as they are.
UPDATABLE = frozenset(
    {
        "CREATE_COMPLETE",
        "UPDATE_COMPLETE",
        "UPDATE_ROLLBACK_COMPLETE",
        "IMPORT_COMPLETE",
        "IMPORT_ROLLBACK_COMPLETE",
    }
)
DEPLOYED_OK = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE"})
# A create that failed leaves an empty stack that can only be deleted.
EMPTY_AFTER_FAILED_CREATE = frozenset(
    {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "REVIEW_IN_PROGRESS"}
)
CANCELLED = "Resource creation cancelled"
NOT_A_STACK_RESPONSE = (
    "CloudFormation answered {operation} with something that is not an AWS response "
    "(as a stand-in such as moto does when a resource fails in it): {answer}"
)


def _answer(exc: ResponseParserError) -> str:
    """The body botocore could not parse, shortened to one line."""
    text = str(exc)
    body = text.split("invalid XML received.", 1)[-1]
    body = body.split("Further retries may succeed:", 1)[-1].strip()
    return " ".join(body.split())[:300]


# A change set's Replacement values that may lose a resource's data.
REPLACES = frozenset({"True", "Conditional"})


class CloudFormationStack:
    """Create, update or delete one stack and show what CloudFormation does."""

    def __init__(
        self,
        client: Any,
        name: str,
        out: Out = say,
        sleep: Callable[[float], None] = time.sleep,
        poll_seconds: float = 3.0,
        timeout_seconds: float = 3600.0,
    ) -> None:
        self._client = client
        self.name = name
        self._out = out
        self._sleep = sleep
        self._poll = poll_seconds
        self._timeout = timeout_seconds
        self._seen: set[str] = set()

    # -- reading -------------------------------------------------------

    def describe(self, stack: str | None = None) -> dict[str, Any] | None:
        """The stack, or None when there is none by that name."""
        try:
            stacks = self._client.describe_stacks(StackName=stack or self.name)["Stacks"]
        except ClientError as exc:
            if "does not exist" in exc.response.get("Error", {}).get("Message", ""):
                return None
            raise
        return stacks[0] if stacks else None

    def outputs(self) -> dict[str, str]:
        stack = self.describe() or {}
        found = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        if found or stack.get("StackStatus") not in UPDATABLE:
            return found
        return self._outputs_from_resources(stack)

    def _outputs_from_resources(self, stack: dict[str, Any]) -> dict[str, str]:
        """The declared outputs, worked out from the stack's resources.

        For a stand-in: moto's change sets create the resources but never
        compute outputs. A stack on AWS that declares outputs always has them.
        """
        body = self._client.get_template(StackName=stack["StackId"])["TemplateBody"]
        declared = (json.loads(body) if isinstance(body, str) else body).get("Outputs", {})
        if not declared:
            return {}
        _, partition, _, region, account, _ = stack["StackId"].split(":", 5)
        values = {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}
        values |= {
            "AWS::Partition": partition,
            "AWS::Region": region,
            "AWS::AccountId": account,
            "AWS::StackName": stack["StackName"],
            "AWS::URLSuffix": "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com",
        }
        pages = self._client.get_paginator("list_stack_resources").paginate(
            StackName=stack["StackId"]
        )
        for page in pages:
            for resource in page["StackResourceSummaries"]:
                if resource.get("PhysicalResourceId"):
                    values[resource["LogicalResourceId"]] = resource["PhysicalResourceId"]
        resolved = tpl.resolve_outputs(declared, values)
        self._out(
            f"==> {self.name} reports no outputs though its template declares {len(declared)} "
            f"(a stand-in such as moto computes none after a change set): {len(resolved)} "
            "worked out from its resources"
        )
        return resolved

    def _events(self, stack: str) -> list[dict[str, Any]]:
        """Events not shown yet, oldest first."""
        fresh: list[dict[str, Any]] = []
        kwargs = {"StackName": stack}
        while True:
            page = self._client.describe_stack_events(**kwargs)
            events = page.get("StackEvents", [])
            new = [e for e in events if e["EventId"] not in self._seen]
            fresh.extend(new)
            if len(new) < len(events) or "NextToken" not in page:
                break
            kwargs["NextToken"] = page["NextToken"]
        self._seen.update(e["EventId"] for e in fresh)
        return list(reversed(fresh))

    def _show(self, event: dict[str, Any]) -> None:
        when = event["Timestamp"]
        stamp = when.strftime("%H:%M:%S") if isinstance(when, datetime) else str(when)
        reason = event.get("ResourceStatusReason") or ""
        self._out(
            f"  {stamp}  {event['ResourceStatus']:<32} {event['ResourceType']:<34} "
            f"{event['LogicalResourceId']}  {reason}".rstrip()
        )

    # -- waiting -------------------------------------------------------

    def _watch(self, stack_id: str) -> tuple[str, list[dict[str, Any]]]:
        """Print events as they happen until the stack settles; its status and events."""
        deadline = time.monotonic() + self._timeout
        history: list[dict[str, Any]] = []
        while True:
            events = self._events(stack_id)
            for event in events:
                self._show(event)
            history.extend(events)
            stack = self.describe(stack_id)
            status = stack["StackStatus"] if stack else "DELETE_COMPLETE"
            if not status.endswith("_IN_PROGRESS"):
                for event in self._events(stack_id):
                    self._show(event)
                    history.append(event)
                return status, history
            if time.monotonic() > deadline:
                raise DeployError(
                    f"stack {self.name} still {status} after {self._timeout:.0f} s; "
                    "CloudFormation carries on: watch it in the console"
                )
            self._sleep(self._poll)

    @staticmethod
    def failure_reason(events: list[dict[str, Any]]) -> str:
        """The first resource that failed and why (later failures are its echoes)."""
        for event in events:
            status = event.get("ResourceStatus", "")
            reason = event.get("ResourceStatusReason") or ""
            is_stack = event.get("ResourceType") == "AWS::CloudFormation::Stack"
            if status.endswith("_FAILED") and not is_stack and CANCELLED not in reason:
                return f"{event['LogicalResourceId']} ({event['ResourceType']}) {status}: {reason}"
        for event in events:
            if event.get("ResourceStatus", "").endswith("_FAILED"):
                return f"{event['LogicalResourceId']}: {event.get('ResourceStatusReason', '')}"
        return "no resource reported a failure; see the stack events above"

    def _wait_for_change_set(self, change_set_id: str) -> dict[str, Any] | None:
        """The ready change set, or None when it holds no changes."""
        deadline = time.monotonic() + self._timeout
        while True:
            described = self._client.describe_change_set(ChangeSetName=change_set_id)
            status = described["Status"]
            if status == "CREATE_COMPLETE":
                return described  # type: ignore[no-any-return]
            if status == "FAILED":
                reason = described.get("StatusReason", "")
                if any(marker in reason for marker in NO_CHANGES):
                    self._client.delete_change_set(ChangeSetName=change_set_id)
                    return None
                raise DeployError(f"CloudFormation rejected the change set: {reason}")
            if time.monotonic() > deadline:
                raise DeployError(f"change set still {status} after {self._timeout:.0f} s")
            self._sleep(min(self._poll, 2.0))

    def _show_changes(self, change_set: dict[str, Any]) -> list[dict[str, Any]]:
        changes = [
            c["ResourceChange"] for c in change_set.get("Changes", []) if "ResourceChange" in c
        ]
        for change in changes:
            replace = {"True": "  (REPLACEMENT)", "Conditional": "  (MAY REPLACE)"}.get(
                change.get("Replacement", ""), "")
            self._out(
                f"  {change['Action']:<7} {change.get('ResourceType', ''):<34} "
                f"{change['LogicalResourceId']}{replace}"
            )
        return changes

    # -- deploying -----------------------------------------------------

    def _prepare(self) -> str:
        """CREATE or UPDATE; clears an empty stack left by a first create that did not finish."""
        stack = self.describe()
        if stack is None:
            return "CREATE"
        status = stack["StackStatus"]
        if status in EMPTY_AFTER_FAILED_CREATE:
            # REVIEW_IN_PROGRESS: a first change set never executed. AWS would take
            # another CREATE; moto would make a second stack of the same name.
            self._out(f"==> {self.name} is {status} from an unfinished first deploy; deleting it")
            self._seen.clear()
            self._events(stack["StackId"])
            self._client.delete_stack(StackName=stack["StackId"])
            final, events = self._watch(stack["StackId"])
            if final != "DELETE_COMPLETE":
                raise DeployError(f"could not clear {self.name}: {self.failure_reason(events)}")
            return "CREATE"
        if status in UPDATABLE:
            return "UPDATE"
        raise DeployError(
            f"stack {self.name} is {status}; wait for it to settle"
            + ("" if status.endswith("_IN_PROGRESS") else " or fix it in the console")
        )

    def deploy(
        self,
        template: dict[str, str],
        parameters: dict[str, str],
        tags: dict[str, str],
        protected: frozenset[str] = frozenset(),
    ) -> bool:
        """Create or update through a change set; False when nothing changed.

        `template` is {"TemplateBody": ...} or {"TemplateURL": ...}. A change
        set that would replace a `protected` resource is deleted, not run.
        """
        change_type = self._prepare()
        name = "deploy-" + time.strftime("%Y%m%d-%H%M%S")
        self._out(f"==> creating change set {name} ({change_type} {self.name})")
        try:
            created = self._client.create_change_set(
                StackName=self.name,
                ChangeSetName=name,
                ChangeSetType=change_type,
                Capabilities=CAPABILITIES,
                Parameters=[
                    {"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()
                ],
                Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
                **template,
            )
        except ClientError as exc:
            # AWS says "no changes" in the change set's status; moto refuses the call.
            message = exc.response.get("Error", {}).get("Message", "")
            if not any(marker in message for marker in NO_CHANGES):
                raise
            change_set = None
        else:
            change_set = self._wait_for_change_set(created["Id"])
        if change_set is None:
            self._out("==> no changes: the stack already matches this build")
            return False
        changes = self._show_changes(change_set)
        replaced = sorted(
            c["LogicalResourceId"]
            for c in changes
            # "Conditional": CloudFormation cannot tell before it runs, so it may.
            if c.get("Replacement") in REPLACES and c["LogicalResourceId"] in protected
        )
        if replaced:
            self._client.delete_change_set(ChangeSetName=created["Id"])
            raise DeployError(
                f"this change would replace {', '.join(replaced)} and lose its data; "
                "nothing was changed"
            )
        self._seen.clear()
        self._events(created["StackId"])  # what happened before this deploy is not news
        self._out(f"==> executing {name}; stack events follow")
        try:
            self._client.execute_change_set(ChangeSetName=created["Id"])
        except ResponseParserError as exc:
            raise DeployError(
                NOT_A_STACK_RESPONSE.format(operation="ExecuteChangeSet", answer=_answer(exc))
            ) from exc
        status, events = self._watch(created["StackId"])
        if status not in DEPLOYED_OK:
            raise DeployError(f"deploy failed ({status}): {self.failure_reason(events)}")
        return True

    def destroy(self) -> bool:
        """Delete the stack; False when there was none."""
        stack = self.describe()
        if stack is None:
            return False
        self._seen.clear()
        self._events(stack["StackId"])
        self._out(f"==> deleting stack {self.name}; stack events follow")
        self._client.delete_stack(StackName=stack["StackId"])
        status, events = self._watch(stack["StackId"])
        if status != "DELETE_COMPLETE":
            raise DeployError(f"destroy failed ({status}): {self.failure_reason(events)}")
        return True
