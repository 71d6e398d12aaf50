// The inference engine, one header per concept. Include what you use; this list is the map.
#pragma once

#include "router/engine/backend.h"        // Backend (CPU, CUDA), DeviceForward: the pass on a GPU
#include "router/engine/chat_template.h"  // ChatTemplate: messages -> prompt text (Jinja subset)
#include "router/engine/engine.h"         // Engine: sequences, batched Forward, KV export/import
#include "router/engine/gguf.h"           // GgufFile: validated view of a GGUF file
#include "router/engine/model.h"          // Model, ModelConfig: an architecture's weights
#include "router/engine/result.h"         // Result<T>, Status, Error
#include "router/engine/sampler.h"        // Sampler, SamplingParams
#include "router/engine/tensor_types.h"   // TensorType, DequantizeRow
#include "router/engine/tokenizer.h"      // Tokenizer, StreamingDecoder
