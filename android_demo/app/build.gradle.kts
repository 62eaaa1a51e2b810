plugins {
    alias(libs.plugins.android.application)
    alias(libs.plugins.kotlin.android)
    alias(libs.plugins.kotlin.compose)
}

android {
    namespace = "dev.kerassparse.listops"
    compileSdk = 35

    defaultConfig {
        applicationId = "dev.kerassparse.listops"
        minSdk = 26
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions {
        jvmTarget = "17"
    }
    buildFeatures {
        compose = true
    }
    androidResources {
        noCompress += "tflite"  // the model is memory-mapped from the APK
    }
    testOptions {
        unitTests.isReturnDefaultValues = true
    }
    sourceSets["test"].resources.srcDir("src/main/assets")  // the golden vectors, for the JVM tests
}

// The model, vocabulary and golden vectors come from the main job (examples/listops/run.py), which copies
// them into src/main/assets. This check stops a build that would ship without them.
val checkModelAssets by tasks.registering {
    doLast {
        listOf("listops_int8.tflite", "listops_vocab.json", "golden.json").forEach { name ->
            check(file("src/main/assets/$name").exists()) {
                "src/main/assets/$name is missing: run `.venv/bin/python examples/listops/run.py` from the repository root."
            }
        }
    }
}
tasks.named("preBuild") { dependsOn(checkModelAssets) }

dependencies {
    implementation(libs.litert)
    implementation(libs.litert.gpu)
    implementation(platform(libs.compose.bom))
    implementation(libs.compose.material3)
    implementation(libs.compose.ui)
    implementation(libs.compose.ui.tooling.preview)
    implementation(libs.activity.compose)
    implementation(libs.coroutines.android)
    debugImplementation(libs.compose.ui.tooling)
    testImplementation(libs.junit)
    testImplementation(libs.json)
}
