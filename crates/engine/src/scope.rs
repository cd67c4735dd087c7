//! The data a step's expressions can see, kept as a chain of frames instead of one big JSON
//! object so that a step never has to copy the whole run state to read one value.
//!
//! The root frame holds the outputs of steps outside loops. Each loop iteration and each `catch`
//! block gets a child frame holding its own outputs plus the loop variables or the caught error;
//! lookups walk from the innermost frame outwards.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::{Map, Value};

use crate::model::FlowGraph;

/// The variables of the innermost loop iteration.
#[derive(Debug)]
pub(crate) struct LoopVars {
    /// Index of the loop step in the graph.
    pub(crate) step: usize,
    pub(crate) item: Value,
    pub(crate) index: usize,
}

/// One level of scope.
#[derive(Debug, Default)]
pub(crate) struct Frame {
    parent: Option<Arc<Frame>>,
    outputs: Mutex<HashMap<usize, Value>>,
    loop_vars: Option<LoopVars>,
    error: Option<Value>,
    /// Loop path of this frame: empty at the root, `"2"` or `"2.0"` inside loops.
    path: String,
}

impl Frame {
    pub(crate) fn root() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A frame for one iteration of the loop step `step`, seeded with `outputs`.
    pub(crate) fn iteration(
        parent: &Arc<Frame>,
        vars: LoopVars,
        outputs: HashMap<usize, Value>,
    ) -> Arc<Self> {
        let path = if parent.path.is_empty() {
            vars.index.to_string()
        } else {
            format!("{}.{}", parent.path, vars.index)
        };
        Arc::new(Self {
            parent: Some(parent.clone()),
            outputs: Mutex::new(outputs),
            loop_vars: Some(vars),
            error: None,
            path,
        })
    }

    /// A frame for a `catch` block, with the caught error in scope.
    pub(crate) fn catch(parent: &Arc<Frame>, error: Value) -> Arc<Self> {
        Arc::new(Self {
            parent: Some(parent.clone()),
            outputs: Mutex::default(),
            loop_vars: None,
            error: Some(error),
            path: parent.path.clone(),
        })
    }

    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<usize, Value>> {
        // A panic while holding the lock cannot leave the map half-written, so keep going.
        self.outputs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn set_output(&self, step: usize, output: Value) {
        self.lock().insert(step, output);
    }

    /// Removes and returns every output stored in this frame (not its parents).
    pub(crate) fn take_outputs(&self) -> HashMap<usize, Value> {
        std::mem::take(&mut *self.lock())
    }

    /// Applies `f` to the nearest stored output of `step`, or returns `None` when the step has
    /// no output in scope.
    pub(crate) fn with_output<R>(&self, step: usize, f: impl FnOnce(&Value) -> R) -> Option<R> {
        let mut frame = self;
        loop {
            {
                let outputs = frame.lock();
                if let Some(value) = outputs.get(&step) {
                    return Some(f(value));
                }
            }
            frame = frame.parent.as_deref()?;
        }
    }

    /// The innermost loop variables.
    pub(crate) fn innermost_loop(&self) -> Option<&LoopVars> {
        self.chain().find_map(|f| f.loop_vars.as_ref())
    }

    /// The variables of the iteration of loop step `step` that encloses this frame.
    pub(crate) fn loop_of(&self, step: usize) -> Option<&LoopVars> {
        self.chain().filter_map(|f| f.loop_vars.as_ref()).find(|v| v.step == step)
    }

    pub(crate) fn error(&self) -> Option<&Value> {
        self.chain().find_map(|f| f.error.as_ref())
    }

    fn chain(&self) -> impl Iterator<Item = &Frame> {
        std::iter::successors(Some(self), |f| f.parent.as_deref())
    }

    /// Builds the whole scope object. Only expressions that cannot be answered from one root
    /// key (wildcards over `steps`, descendant segments from `$`) pay for this.
    pub(crate) fn materialize(&self, graph: &FlowGraph, run: &Value) -> Value {
        let frames: Vec<&Frame> = self.chain().collect();
        let mut steps = Map::new();
        // Outer frames first so that inner outputs win.
        for frame in frames.iter().rev() {
            for (idx, value) in frame.lock().iter() {
                steps.insert(graph.steps[*idx].id.clone(), value.clone());
            }
        }
        let mut loops = Map::new();
        for vars in frames.iter().rev().filter_map(|f| f.loop_vars.as_ref()) {
            loops.insert(graph.steps[vars.step].id.clone(), loop_object(vars));
        }
        let trigger = self.with_output(graph.trigger, Value::clone).unwrap_or(Value::Null);
        let mut scope = Map::new();
        scope.insert("trigger".into(), trigger);
        scope.insert("steps".into(), Value::Object(steps));
        if let Some(vars) = self.innermost_loop() {
            scope.insert("item".into(), vars.item.clone());
            scope.insert("index".into(), Value::from(vars.index));
        }
        scope.insert("loops".into(), Value::Object(loops));
        if let Some(error) = self.error() {
            scope.insert("error".into(), error.clone());
        }
        scope.insert("run".into(), run.clone());
        Value::Object(scope)
    }
}

/// The `{"item", "index"}` object a loop exposes under `loops.<stepId>`.
pub(crate) fn loop_object(vars: &LoopVars) -> Value {
    let mut obj = Map::new();
    obj.insert("item".into(), vars.item.clone());
    obj.insert("index".into(), Value::from(vars.index));
    Value::Object(obj)
}
