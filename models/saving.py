"""How the project's Keras objects are registered for saving.

Each is registered under its module's name (`models.text>standardize`), so that loading a model
in a process that has not imported the project fails with a message naming the module to
import (Keras 3 imports a custom object's module by itself only for its own packages:
`keras.src.saving.serialization_lib._retrieve_class_or_fn`). Models saved before, under the
package name "bilstm", still load.
"""

import keras

LEGACY_PACKAGE = "bilstm"


def serializable(obj):
    """Decorator: register a Keras layer, schedule or function under "<its module>>{its name}" (and the legacy name)."""
    registered = keras.saving.register_keras_serializable(package=obj.__module__)(obj)
    keras.saving.get_custom_objects()[f"{LEGACY_PACKAGE}>{obj.__name__}"] = registered
    return registered
