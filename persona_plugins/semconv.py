"""Span and attribute names, written once.

The OpenTelemetry GenAI names are current as of the GenAI semantic conventions (they live in their
own conventions repository, so they are spelled out here rather than imported from
``opentelemetry-semantic-conventions``, where every ``gen_ai`` constant is now deprecated).
Names under ``persona_plugins.`` are this project's own.
"""

from __future__ import annotations

# -- GenAI semantic conventions ---------------------------------------------------------------
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE = "gen_ai.request.temperature"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_AGENT_NAME = "gen_ai.agent.name"
GEN_AI_AGENT_ID = "gen_ai.agent.id"
GEN_AI_AGENT_DESCRIPTION = "gen_ai.agent.description"
GEN_AI_CONVERSATION_ID = "gen_ai.conversation.id"
GEN_AI_SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
GEN_AI_EVALUATION_NAME = "gen_ai.evaluation.name"
GEN_AI_EVALUATION_SCORE_VALUE = "gen_ai.evaluation.score.value"
GEN_AI_EVALUATION_SCORE_LABEL = "gen_ai.evaluation.score.label"
GEN_AI_EVALUATION_EXPLANATION = "gen_ai.evaluation.explanation"
GEN_AI_EVALUATION_RESULT_EVENT = "gen_ai.evaluation.result"
ERROR_TYPE = "error.type"
GEN_AI_TOKEN_TYPE = "gen_ai.token.type"
METRIC_OPERATION_DURATION = "gen_ai.client.operation.duration"
METRIC_TOKEN_USAGE = "gen_ai.client.token.usage"

# gen_ai.operation.name values
OP_CHAT = "chat"
OP_INVOKE_AGENT = "invoke_agent"
OP_INVOKE_WORKFLOW = "invoke_workflow"

# -- persona-plugins ----------------------------------------------------------------------------
PP_STAGE = "persona_plugins.stage"
PP_PERSONA_NAME = "persona_plugins.persona.name"
PP_PERSONA_SOURCE = "persona_plugins.persona.source"
PP_PERSONA_MODE = "persona_plugins.persona.mode"
PP_ENSEMBLE = "persona_plugins.ensemble"
PP_REFINE = "persona_plugins.refine"
PP_GUARD = "persona_plugins.guard"
PP_CANDIDATE = "persona_plugins.candidate.name"
PP_CANDIDATE_COUNT = "persona_plugins.candidates.count"
PP_CHOSEN = "persona_plugins.chosen"
PP_MODEL_CALLS = "persona_plugins.model_calls"
PP_JUDGE_CONSISTENT = "persona_plugins.judge.consistent"
PP_JUDGE_FALLBACK = "persona_plugins.judge.fallback"
PP_JUDGE_CALLS = "persona_plugins.judge.model_calls"
PP_JUDGE_ORDER = "persona_plugins.judge.order"
PP_JUDGE_ATTEMPT = "persona_plugins.judge.attempt"
PP_FINDINGS_COUNT = "persona_plugins.findings.count"
PP_ACTION = "persona_plugins.guard.action"
PP_HOOK = "persona_plugins.hook"
PP_PLUGIN = "persona_plugins.plugin"
PP_STAGE_ERROR_EVENT = "persona_plugins.stage_error"
PP_REFINE_PLAN = "persona_plugins.refine.plan"
PP_REFINE_PLAN_SOURCE = "persona_plugins.refine.plan_source"
PP_REFINE_PARALLEL = "persona_plugins.refine.parallel"
PP_REFINE_ROUND = "persona_plugins.refine.round"
PP_REFINE_REVIEWS = "persona_plugins.refine.reviews"
PP_FAILED_DETECTORS = "persona_plugins.guard.failed_detectors"

# span names
SPAN_TURN = "invoke_workflow persona_pipeline"
SPAN_STAGE_PREFIX = "persona_plugins "

# the opt-in switch for recording message and persona text
CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
