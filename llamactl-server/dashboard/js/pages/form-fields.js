// The typed backend flags of each backend (keys as in `backend_options`, as llamactl-core
// types them), and fallback help for the instance options the OpenAPI schema describes.

/**
 * @typedef {{key: string, label: string, type: 'string'|'int'|'float'|'bool'|'enum'|'list'|'layers',
 *   help: string, common?: boolean, choices?: string[], placeholder?: string}} FlagSpec
 */

/** @type {Object<string, {label: string, blurb: string, parse: string|null, flags: FlagSpec[]}>} */
export const BACKENDS = {
  llama_cpp: {
    label: 'llama.cpp',
    blurb: 'llama-server with a GGUF model; without a model it runs as a router of several models.',
    parse: 'llama-cpp',
    flags: [
      { key: 'model', label: 'Model file', type: 'string', common: true, placeholder: '/models/qwen.gguf', help: 'Path of the GGUF model file (-m). For a router of several models leave it and the repository empty, and add models_dir as another flag or fill the router presets.' },
      { key: 'hf_repo', label: 'Hugging Face repository', type: 'string', common: true, placeholder: 'user/model:Q4_K_M', help: 'Download the model from this repository (-hf): user/model[:quant].' },
      { key: 'hf_file', label: 'File in the repository', type: 'string', help: 'File within the Hugging Face repository (-hff).' },
      { key: 'alias', label: 'Alias', type: 'string', help: 'Model name the server reports and accepts (-a).' },
      { key: 'port', label: 'Port', type: 'int', common: true, help: 'Set it to pin the port; leave it empty to have one allocated at each start.' },
      { key: 'host', label: 'Host', type: 'string', help: 'Address to listen on (default: the manager’s backend host, 127.0.0.1).' },
      { key: 'ctx_size', label: 'Context size', type: 'int', common: true, placeholder: '4096', help: 'Context size in tokens (-c); 0 takes it from the model.' },
      { key: 'gpu_layers', label: 'GPU layers', type: 'layers', common: true, placeholder: '99, auto or all', help: 'Layers offloaded to the GPU (-ngl): a number, auto or all; 0 keeps everything on the CPU.' },
      { key: 'threads', label: 'Threads', type: 'int', common: true, help: 'Generation threads (-t).' },
      { key: 'parallel', label: 'Parallel slots', type: 'int', common: true, help: 'Number of server slots, concurrent sequences (-np).' },
      { key: 'flash_attn', label: 'Flash attention', type: 'enum', choices: ['on', 'off', 'auto'], common: true, help: 'Flash attention (-fa).' },
      { key: 'jinja', label: 'Jinja templates', type: 'bool', common: true, help: 'Jinja chat templates (false writes --no-jinja).' },
      { key: 'threads_batch', label: 'Batch threads', type: 'int', help: 'Batch-processing threads (-tb).' },
      { key: 'batch_size', label: 'Batch size', type: 'int', help: 'Logical batch size (-b).' },
      { key: 'ubatch_size', label: 'Micro-batch size', type: 'int', help: 'Physical batch size (-ub).' },
      { key: 'cont_batching', label: 'Continuous batching', type: 'bool', help: 'Continuous batching (false writes --no-cont-batching).' },
      { key: 'chat_template', label: 'Chat template', type: 'string', help: 'Custom chat template.' },
      { key: 'embedding', label: 'Embeddings only', type: 'bool', help: 'Serve embeddings only.' },
      { key: 'reranking', label: 'Reranking', type: 'bool', help: 'Serve the reranking endpoint.' },
      { key: 'cache_type_k', label: 'KV cache type (K)', type: 'string', placeholder: 'f16, q8_0…', help: 'KV cache type for K (-ctk).' },
      { key: 'cache_type_v', label: 'KV cache type (V)', type: 'string', placeholder: 'f16, q8_0…', help: 'KV cache type for V (-ctv).' },
      { key: 'predict', label: 'Tokens to predict', type: 'int', help: 'Default tokens to predict per request (-n).' },
      { key: 'temp', label: 'Temperature', type: 'float', help: 'Default sampling temperature.' },
      { key: 'seed', label: 'Seed', type: 'int', help: 'Sampling seed (-1 = random).' },
      { key: 'mmproj', label: 'Multimodal projector', type: 'string', help: 'Multimodal projector file (-mm).' },
      { key: 'lora', label: 'LoRA adapters', type: 'list', help: 'One adapter path per line (one --lora each).' },
      { key: 'verbose', label: 'Verbose', type: 'bool', help: 'Log everything (-v).' },
    ],
  },
  mlx_lm: {
    label: 'MLX',
    blurb: 'mlx_lm.server on Apple silicon.',
    parse: 'mlx',
    flags: [
      { key: 'model', label: 'Model', type: 'string', common: true, placeholder: 'mlx-community/…', help: 'Model path or Hugging Face repository.' },
      { key: 'port', label: 'Port', type: 'int', common: true, help: 'Set it to pin the port; leave it empty to have one allocated at each start.' },
      { key: 'host', label: 'Host', type: 'string', help: 'Address to listen on.' },
      { key: 'max_tokens', label: 'Max tokens', type: 'int', common: true, help: 'Default maximum tokens to generate.' },
      { key: 'temp', label: 'Temperature', type: 'float', common: true, help: 'Default sampling temperature.' },
      { key: 'top_p', label: 'Top p', type: 'float', help: 'Default nucleus sampling.' },
      { key: 'top_k', label: 'Top k', type: 'int', help: 'Default top-k sampling.' },
      { key: 'min_p', label: 'Min p', type: 'float', help: 'Default min-p sampling.' },
      { key: 'adapter_path', label: 'Adapter path', type: 'string', help: 'LoRA adapter path.' },
      { key: 'draft_model', label: 'Draft model', type: 'string', help: 'Model for speculative decoding.' },
      { key: 'num_draft_tokens', label: 'Draft tokens', type: 'int', help: 'Tokens drafted per step.' },
      { key: 'trust_remote_code', label: 'Trust remote code', type: 'bool', help: 'Allow the model’s own code.' },
      { key: 'chat_template', label: 'Chat template', type: 'string', help: 'Custom chat template.' },
      { key: 'use_default_chat_template', label: 'Default chat template', type: 'bool', help: 'Use the default chat template.' },
      { key: 'log_level', label: 'Log level', type: 'string', help: 'DEBUG, INFO, WARNING…' },
    ],
  },
  vllm: {
    label: 'vLLM',
    blurb: 'vllm serve on NVIDIA or AMD GPUs.',
    parse: 'vllm',
    flags: [
      { key: 'model', label: 'Model', type: 'string', common: true, placeholder: 'Qwen/Qwen2.5-7B-Instruct', help: 'Model path or Hugging Face repository.' },
      { key: 'port', label: 'Port', type: 'int', common: true, help: 'Set it to pin the port; leave it empty to have one allocated at each start.' },
      { key: 'host', label: 'Host', type: 'string', help: 'Address to listen on.' },
      { key: 'served_model_name', label: 'Served model name', type: 'string', help: 'Name the server reports.' },
      { key: 'max_model_len', label: 'Max model length', type: 'int', common: true, help: 'Context length in tokens.' },
      { key: 'gpu_memory_utilization', label: 'GPU memory share', type: 'float', common: true, placeholder: '0.9', help: 'Fraction of GPU memory to use (0–1).' },
      { key: 'tensor_parallel_size', label: 'Tensor parallel size', type: 'int', common: true, help: 'GPUs to split the model over (-tp).' },
      { key: 'pipeline_parallel_size', label: 'Pipeline parallel size', type: 'int', help: 'Pipeline stages (-pp).' },
      { key: 'max_num_seqs', label: 'Max sequences', type: 'int', help: 'Concurrent sequences.' },
      { key: 'dtype', label: 'Data type', type: 'string', help: 'auto, half, bfloat16…' },
      { key: 'quantization', label: 'Quantization', type: 'string', help: 'awq, gptq, fp8… (-q).' },
      { key: 'kv_cache_dtype', label: 'KV cache type', type: 'string', help: 'KV cache data type.' },
      { key: 'tokenizer', label: 'Tokenizer', type: 'string', help: 'Tokenizer path or repository.' },
      { key: 'enforce_eager', label: 'Enforce eager', type: 'bool', help: 'Disable CUDA graphs.' },
      { key: 'trust_remote_code', label: 'Trust remote code', type: 'bool', help: 'Allow the model’s own code.' },
      { key: 'enable_prefix_caching', label: 'Prefix caching', type: 'bool', help: 'Reuse the KV cache of shared prefixes.' },
      { key: 'seed', label: 'Seed', type: 'int', help: 'Random seed.' },
      { key: 'download_dir', label: 'Download directory', type: 'string', help: 'Where models are downloaded.' },
      { key: 'chat_template', label: 'Chat template', type: 'string', help: 'Custom chat template.' },
    ],
  },
  custom: {
    label: 'Custom',
    blurb: 'Any OpenAI-compatible server: you give the command and its arguments.',
    parse: null,
    flags: [
      { key: 'command', label: 'Command', type: 'string', common: true, placeholder: '/opt/server/bin/serve', help: 'Executable to run. Required.' },
      { key: 'args', label: 'Arguments', type: 'list', common: true, help: 'One argument per line; {host}, {port}, {model} and {name} are filled in at start.' },
      { key: 'model', label: 'Model', type: 'string', common: true, help: 'Value of the {model} placeholder.' },
      { key: 'port', label: 'Port', type: 'int', common: true, help: 'Value of the {port} placeholder. Set it to pin the port.' },
      { key: 'host', label: 'Host', type: 'string', help: 'Value of the {host} placeholder.' },
      { key: 'health_path', label: 'Health path', type: 'string', placeholder: '/health', help: 'Readiness endpoint answering 200 when ready.' },
      { key: 'request_model', label: 'Request model', type: 'string', help: 'Model name that requests must carry.' },
    ],
  },
};

/** Fallback help for the top-level options (the OpenAPI schema's descriptions win). */
export const TOP_HELP = {
  auto_restart: 'Restart after an unexpected exit.',
  max_restarts: 'Consecutive automatic restarts before giving up.',
  restart_delay: 'First restart delay: seconds, or a string such as "500ms".',
  on_demand_start: 'Start when a request needs it.',
  idle_timeout: 'Idle time before a stop: minutes, or a string such as "45s"; 0 pins the instance.',
  startup_timeout: 'Time allowed to become ready: seconds, or a string such as "10m".',
  environment: 'Environment variables of the backend.',
  command_override: 'Program to run instead of the configured one.',
  group: 'Group, for per-group running limits.',
  docker_enabled: 'Run as a Docker container.',
  nodes: 'Nodes the instance is assigned to.',
  preset_ini: 'llama.cpp router presets (preset.ini).',
};

/** Docker settings of an instance (`docker.*`). */
export const DOCKER_FIELDS = [
  { key: 'image', label: 'Image', type: 'string', placeholder: 'ghcr.io/ggml-org/llama.cpp:server', help: 'Image (default: the backend’s configured one).' },
  { key: 'network', label: 'Network', type: 'enum', choices: ['bridge', 'host'], help: 'bridge publishes the backend’s port on the host; host shares the host’s network.' },
  { key: 'gpus', label: 'GPUs', type: 'string', placeholder: 'all, 2 or device=0,2', help: 'GPUs given to the container, as docker run --gpus says it.' },
  { key: 'shm_size', label: '/dev/shm size', type: 'string', placeholder: '1g', help: 'Bytes, or with a unit (k, m, g).' },
  { key: 'memory', label: 'Memory limit', type: 'string', placeholder: '16g', help: 'Bytes, or with a unit; at least 6m.' },
  { key: 'volumes', label: 'Volumes', type: 'list', help: 'One mount per line, SOURCE:TARGET[:ro|:rw].' },
  { key: 'entrypoint', label: 'Entrypoint', type: 'list', help: 'Replaces the image’s entrypoint: one element per line.' },
];
