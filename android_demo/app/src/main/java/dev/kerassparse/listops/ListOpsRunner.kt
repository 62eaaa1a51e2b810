package dev.kerassparse.listops

import android.content.res.AssetManager
import com.google.ai.edge.litert.Accelerator
import com.google.ai.edge.litert.CompiledModel
import com.google.ai.edge.litert.Environment
import com.google.ai.edge.litert.LiteRtException
import com.google.ai.edge.litert.Model
import com.google.ai.edge.litert.TensorBuffer
import com.google.ai.edge.litert.TensorType

/** Runs the ListOps model: shape and types read from the model, buffers created once, everything closed. */
class ListOpsRunner private constructor(
    private val env: Environment,
    private val model: Model,
    private val compiled: CompiledModel,
    val accelerator: Accelerator,
    val seqLen: Int,
) : AutoCloseable {
    private val inputs: List<TensorBuffer> = compiled.createInputBuffers()
    private val outputs: List<TensorBuffer> = compiled.createOutputBuffers()

    data class Result(val answer: Int, val logits: FloatArray, val milliseconds: Double)

    fun run(ids: IntArray): Result {
        require(ids.size == seqLen) { "Expected $seqLen token ids, got ${ids.size}." }
        inputs[0].writeInt(ids)
        val started = System.nanoTime()
        compiled.run(inputs, outputs)
        val milliseconds = (System.nanoTime() - started) / 1e6
        val logits = outputs[0].readFloat()
        return Result(logits.indices.maxBy { logits[it] }, logits, milliseconds)
    }

    override fun close() {
        inputs.forEach { it.close() }
        outputs.forEach { it.close() }
        compiled.close()
        model.close()
        env.close()
    }

    companion object {
        /** Compiles [assetName] on the GPU if asked and available, else on the CPU (the fallback). */
        fun create(assets: AssetManager, assetName: String, inputName: String, useGpu: Boolean): ListOpsRunner {
            val env = Environment.create()
            val model = Model.load(assets, assetName)
            val inputType = model.getInputTensorType(inputName)
            check(inputType.elementType == TensorType.ElementType.INT) {
                "The model's input '$inputName' is ${inputType.elementType}; token ids need INT (int32)."
            }
            val seqLen = inputType.layout!!.dimensions.last()
            val (compiled, accelerator) = if (useGpu) {
                try {
                    CompiledModel.create(model, CompiledModel.Options(Accelerator.GPU), env) to Accelerator.GPU
                } catch (error: LiteRtException) {
                    CompiledModel.create(model, CompiledModel.Options(Accelerator.CPU), env) to Accelerator.CPU
                }
            } else {
                CompiledModel.create(model, CompiledModel.Options(Accelerator.CPU), env) to Accelerator.CPU
            }
            return ListOpsRunner(env, model, compiled, accelerator, seqLen)
        }
    }
}
