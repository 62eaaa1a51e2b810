package dev.kerassparse.listops

import android.os.Bundle
import androidx.activity.ComponentActivity
import androidx.activity.compose.setContent
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.material3.Button
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Surface
import androidx.compose.material3.Switch
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.text.font.FontFamily
import androidx.compose.ui.tooling.preview.Preview
import androidx.compose.ui.unit.dp
import org.json.JSONObject

/** The screen: type or generate an expression; see the model's answer, the true answer and the latency. */
class MainActivity : ComponentActivity() {
    private var runner: ListOpsRunner? = null
    private lateinit var vocabulary: Vocabulary

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val vocabularyJson = JSONObject(assets.open("listops_vocab.json").bufferedReader().readText())
        val tokens = vocabularyJson.getJSONArray("tokens")
        vocabulary = Vocabulary(List(tokens.length()) { tokens.getString(it) })
        val inputName = JSONObject(assets.open("golden.json").bufferedReader().readText()).getString("input_name")
        setContent {
            MaterialTheme {
                ListOpsScreen(
                    onRun = { expression, useGpu ->
                        val current = runner?.takeIf { (it.accelerator.name == "GPU") == useGpu }
                            ?: ListOpsRunner.create(assets, "listops_int8.tflite", inputName, useGpu).also {
                                runner?.close()
                                runner = it
                            }
                        val result = current.run(ListOps.encode(expression, vocabulary, current.seqLen))
                        Answer(result.answer, ListOps.evaluate(expression), result.milliseconds, current.accelerator.name)
                    },
                    generate = { ListOps.generate(120) },
                )
            }
        }
    }

    override fun onDestroy() {
        runner?.close()
        super.onDestroy()
    }
}

data class Answer(val model: Int, val truth: Int, val milliseconds: Double, val accelerator: String)

@Composable
fun ListOpsScreen(onRun: (String, Boolean) -> Answer, generate: () -> String) {
    var expression by remember { mutableStateOf("[MAX 2 9 [MIN 4 7 ] 0 ]") }
    var useGpu by remember { mutableStateOf(false) }
    var answer by remember { mutableStateOf<Answer?>(null) }
    var error by remember { mutableStateOf("") }
    Surface(Modifier.fillMaxSize()) {
        Column(Modifier.padding(16.dp), verticalArrangement = Arrangement.spacedBy(12.dp)) {
            Text("ListOps with a sparse Transformer", style = MaterialTheme.typography.titleLarge)
            Text("BigBird pattern, pruned while training, int8, on this phone with LiteRT.")
            OutlinedTextField(
                value = expression,
                onValueChange = { expression = it },
                label = { Text("Expression") },
                textStyle = MaterialTheme.typography.bodyMedium.copy(fontFamily = FontFamily.Monospace),
                modifier = Modifier.fillMaxWidth(),
            )
            Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
                Button(onClick = { expression = generate() }) { Text("Generate") }
                Button(onClick = {
                    error = ""
                    try {
                        answer = onRun(expression, useGpu)
                    } catch (e: Exception) {
                        error = e.message ?: e.toString()
                    }
                }) { Text("Run") }
            }
            Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
                Switch(checked = useGpu, onCheckedChange = { useGpu = it })
                Text("GPU (falls back to CPU)")
            }
            answer?.let {
                Text("Model's answer: ${it.model}", style = MaterialTheme.typography.titleMedium)
                Text("True answer: ${it.truth}")
                Text("Latency: ${"%.1f".format(it.milliseconds)} ms on ${it.accelerator}")
            }
            if (error.isNotEmpty()) Text(error, color = MaterialTheme.colorScheme.error)
        }
    }
}

@Preview(showBackground = true, widthDp = 412, heightDp = 860)
@Composable
fun ListOpsScreenPreview() {
    MaterialTheme {
        ListOpsScreen(onRun = { _, _ -> Answer(9, 9, 3.2, "CPU") }, generate = { "[SM 1 2 ]" })
    }
}
