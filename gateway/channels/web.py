"""Web widget channel: POST /api/chat and WebSocket /ws/chat."""
from __future__ import annotations

import json
import logging
import secrets

from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from pydantic import BaseModel

from gateway.conversation import BOT_UNAVAILABLE, BotMessage, BotUnavailable, ChatInputError
from gateway.deps import ConversationDep

logger = logging.getLogger(__name__)
router = APIRouter(tags=["web"])

WS_BAD_MESSAGE = 1008


class ChatReply(BaseModel):
    sender_id: str
    messages: list[BotMessage]


async def read_json_object(request: Request) -> dict:
    """Parses the body ourselves so that bad JSON gets a clear Chinese 400, not a stack of pydantic errors."""
    try:
        body = json.loads(await request.body() or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ChatInputError("请求格式错误：请求体必须是 JSON。", status_code=400)
    if not isinstance(body, dict):
        raise ChatInputError("请求格式错误：需要 JSON 对象，例如 {\"sender_id\": \"...\", \"text\": \"...\"}。", status_code=400)
    return body


@router.post("/api/chat", response_model=ChatReply)
async def chat(request: Request, conversation: ConversationDep) -> ChatReply:
    body = await read_json_object(request)
    sender_id = body.get("sender_id")
    messages = await conversation.turn(sender_id, body.get("text"), body.get("metadata"))
    return ChatReply(sender_id=sender_id, messages=messages)


@router.websocket("/ws/chat")
async def chat_socket(websocket: WebSocket) -> None:
    """Frames in: {"text": "..."}; frames out: {"messages": [...]} or {"error": "..."}.

    The session id comes from ?sender_id= (so a reload keeps the conversation) or is
    created here and sent in the first frame.
    """
    conversation = websocket.app.state.conversation
    sender_id = websocket.query_params.get("sender_id") or f"web-{secrets.token_hex(8)}"
    await websocket.accept()
    await websocket.send_json({"sender_id": sender_id})
    try:
        while True:
            raw = await websocket.receive_text()
            try:
                frame = json.loads(raw)
                if not isinstance(frame, dict):
                    raise ValueError
            except ValueError:
                await websocket.send_json({"error": "消息格式错误：需要 JSON 对象 {\"text\": \"...\"}。"})
                continue
            try:
                messages = await conversation.turn(sender_id, frame.get("text"), frame.get("metadata"))
            except ChatInputError as exc:
                if exc.message.startswith("会话标识"):
                    await websocket.close(code=WS_BAD_MESSAGE, reason="bad sender_id")
                    return
                await websocket.send_json({"error": exc.message})
                continue
            except BotUnavailable:
                await websocket.send_json({"error": BOT_UNAVAILABLE, "retry": True})
                continue
            await websocket.send_json({"messages": [m.model_dump() for m in messages]})
    except WebSocketDisconnect:
        logger.info("chat.ws.closed sender=%s", sender_id)
